#include "model/decoder_weights.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

absl::StatusOr<Tensor> Load(const Checkpoint& checkpoint, Backend* backend,
                            const std::string& name, const Shape& shape) {
  ASSIGN_OR_RETURN(Tensor host, checkpoint.GetF32(name, shape));
  return backend->Upload(host);
}

}  // namespace

absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend) {
  if (!config.rmsnorm || !config.original_rope || !config.post_layer_norm) {
    return absl::UnimplementedError(
        "only the GLM-4 decoder variant (rmsnorm, original_rope, post_layer_norm) is supported");
  }
  const int64_t hidden = config.hidden_size, vocab = config.padded_vocab_size;
  const int64_t qkv = config.qkv_size(), ffn = config.ffn_hidden_size;
  const std::string p = "transformer.";
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.word_embeddings,
                   Load(checkpoint, backend, p + "embedding.word_embeddings.weight", {vocab, hidden}));
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string q = absl::StrCat(p, "encoder.layers.", l, ".");
    DecoderLayerWeights layer;
    ASSIGN_OR_RETURN(layer.input_norm, Load(checkpoint, backend, q + "input_layernorm.weight", {hidden}));
    ASSIGN_OR_RETURN(layer.qkv_weight, Load(checkpoint, backend,
                                            q + "self_attention.query_key_value.weight", {qkv, hidden}));
    if (config.add_qkv_bias) {
      ASSIGN_OR_RETURN(layer.qkv_bias, Load(checkpoint, backend,
                                            q + "self_attention.query_key_value.bias", {qkv}));
    }
    ASSIGN_OR_RETURN(layer.dense_weight, Load(checkpoint, backend, q + "self_attention.dense.weight",
                                              {hidden, config.q_size()}));
    ASSIGN_OR_RETURN(layer.post_norm,
                     Load(checkpoint, backend, q + "post_attention_layernorm.weight", {hidden}));
    ASSIGN_OR_RETURN(layer.h_to_4h_weight,
                     Load(checkpoint, backend, q + "mlp.dense_h_to_4h.weight", {2 * ffn, hidden}));
    ASSIGN_OR_RETURN(layer.four_h_to_h_weight,
                     Load(checkpoint, backend, q + "mlp.dense_4h_to_h.weight", {hidden, ffn}));
    if (config.add_bias_linear) {
      ASSIGN_OR_RETURN(layer.dense_bias,
                       Load(checkpoint, backend, q + "self_attention.dense.bias", {hidden}));
      ASSIGN_OR_RETURN(layer.h_to_4h_bias,
                       Load(checkpoint, backend, q + "mlp.dense_h_to_4h.bias", {2 * ffn}));
      ASSIGN_OR_RETURN(layer.four_h_to_h_bias,
                       Load(checkpoint, backend, q + "mlp.dense_4h_to_h.bias", {hidden}));
    }
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm,
                   Load(checkpoint, backend, p + "encoder.final_layernorm.weight", {hidden}));
  ASSIGN_OR_RETURN(w.output_layer,
                   Load(checkpoint, backend, p + "output_layer.weight", {vocab, hidden}));
  return w;
}

}  // namespace glm4v
