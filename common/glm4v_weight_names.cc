#include "common/glm4v_weight_names.h"

#include "absl/strings/str_cat.h"

namespace glm4v {

std::string DecoderLayerPrefix(int layer) {
  return absl::StrCat("transformer.encoder.layers.", layer, ".");
}

std::string VisionLayerPrefix(int layer) {
  return absl::StrCat("transformer.vision.transformer.layers.", layer, ".");
}

std::vector<WeightSpec> DecoderWeightSpecs(const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  const int64_t v = c.padded_vocab_size;
  std::vector<WeightSpec> w;
  // ChatGLM's norms: RMSNorm has only a weight; LayerNorm (rmsnorm=false) also has a bias.
  auto add_norm = [&](const std::string& name) {
    w.push_back({name + ".weight", {h}});
    if (!c.rmsnorm) w.push_back({name + ".bias", {h}});
  };
  w.push_back({"transformer.embedding.word_embeddings.weight", {v, h}});
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = DecoderLayerPrefix(i);
    add_norm(p + "input_layernorm");
    w.push_back({p + "self_attention.query_key_value.weight", {c.qkv_size(), h}});
    if (c.add_qkv_bias || c.add_bias_linear) {
      w.push_back({p + "self_attention.query_key_value.bias", {c.qkv_size()}});
    }
    w.push_back({p + "self_attention.dense.weight", {h, c.q_size()}});
    if (c.add_bias_linear) w.push_back({p + "self_attention.dense.bias", {h}});
    add_norm(p + "post_attention_layernorm");
    w.push_back({p + "mlp.dense_h_to_4h.weight", {2 * int64_t{c.ffn_hidden_size}, h}});
    if (c.add_bias_linear)
      w.push_back({p + "mlp.dense_h_to_4h.bias", {2 * int64_t{c.ffn_hidden_size}}});
    w.push_back({p + "mlp.dense_4h_to_h.weight", {h, c.ffn_hidden_size}});
    if (c.add_bias_linear) w.push_back({p + "mlp.dense_4h_to_h.bias", {h}});
  }
  if (c.post_layer_norm) add_norm("transformer.encoder.final_layernorm");
  if (!c.tie_word_embeddings) w.push_back({"transformer.output_layer.weight", {v, h}});
  return w;
}

std::vector<WeightSpec> VisionWeightSpecs(const ModelConfig& c) {
  const VisionConfig& vc = c.vision;
  const int64_t vh = vc.hidden_size;
  const int64_t h = c.hidden_size;
  const int64_t ffn = c.ffn_hidden_size;
  const std::string pe = "transformer.vision.patch_embedding.";
  const std::string lp = "transformer.vision.linear_proj.";
  std::vector<WeightSpec> w;
  w.push_back({pe + "proj.weight", {vh, vc.in_channels, vc.patch_size, vc.patch_size}});
  w.push_back({pe + "proj.bias", {vh}});
  w.push_back({pe + "cls_embedding", {1, vh}});
  w.push_back({pe + "position_embedding.weight", {vc.num_positions, vh}});
  for (int i = 0; i < vc.num_hidden_layers; ++i) {
    const std::string p = VisionLayerPrefix(i);
    w.push_back({p + "input_layernorm.weight", {vh}});
    w.push_back({p + "input_layernorm.bias", {vh}});
    w.push_back({p + "attention.query_key_value.weight", {3 * vh, vh}});
    w.push_back({p + "attention.query_key_value.bias", {3 * vh}});
    w.push_back({p + "attention.dense.weight", {vh, vh}});
    w.push_back({p + "attention.dense.bias", {vh}});
    w.push_back({p + "post_attention_layernorm.weight", {vh}});
    w.push_back({p + "post_attention_layernorm.bias", {vh}});
    w.push_back({p + "mlp.fc1.weight", {vc.intermediate_size, vh}});
    w.push_back({p + "mlp.fc1.bias", {vc.intermediate_size}});
    w.push_back({p + "mlp.fc2.weight", {vh, vc.intermediate_size}});
    w.push_back({p + "mlp.fc2.bias", {vh}});
  }
  // 2x2 stride-2 conv from the vision width to the decoder width.
  w.push_back({"transformer.vision.conv.weight", {h, vh, 2, 2}});
  w.push_back({"transformer.vision.conv.bias", {h}});
  // GLU projector; its inner width is the decoder's ffn_hidden_size.
  w.push_back({lp + "linear_proj.weight", {h, h}});
  w.push_back({lp + "norm1.weight", {h}});
  w.push_back({lp + "norm1.bias", {h}});
  w.push_back({lp + "gate_proj.weight", {ffn, h}});
  w.push_back({lp + "dense_h_to_4h.weight", {ffn, h}});
  w.push_back({lp + "dense_4h_to_h.weight", {h, ffn}});
  w.push_back({"transformer.vision.boi", {1, 1, h}});
  w.push_back({"transformer.vision.eoi", {1, 1, h}});
  return w;
}

std::vector<WeightSpec> Glm4vWeightSpecs(const ModelConfig& c) {
  std::vector<WeightSpec> w = DecoderWeightSpecs(c);
  std::vector<WeightSpec> vision = VisionWeightSpecs(c);
  w.insert(w.end(), std::make_move_iterator(vision.begin()), std::make_move_iterator(vision.end()));
  return w;
}

}  // namespace glm4v
