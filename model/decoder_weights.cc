#include "model/decoder_weights.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/weight_slices.h"

namespace glm4v {

absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend,
                                                  const WeightLoadOptions& options) {
  ASSIGN_OR_RETURN(TensorParallelShard shard, PlanShard(config, /*rank=*/0, /*size=*/1));
  return LoadDecoderWeights(checkpoint, config, backend, shard, options);
}

absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend,
                                                  const TensorParallelShard& shard,
                                                  const WeightLoadOptions& options) {
  const std::string embedding_name = "transformer.embedding.word_embeddings.weight";
  ASSIGN_OR_RETURN(const TensorInfo embedding_info, checkpoint.Info(embedding_name));
  ASSIGN_OR_RETURN(const WeightDTypes dtypes,
                   ResolveWeightDTypes(options, *backend, embedding_info.dtype));
  const DType mat = dtypes.matrix, act = dtypes.activation;
  if (!config.rmsnorm || !config.original_rope || !config.post_layer_norm) {
    return absl::UnimplementedError(
        "only the GLM-4 decoder variant (rmsnorm, original_rope, post_layer_norm) is supported");
  }
  const int64_t hidden = config.hidden_size, vocab = config.padded_vocab_size;
  const int64_t qkv = config.qkv_size(), ffn = config.ffn_hidden_size;
  const int64_t d = config.kv_channels, q_size = config.q_size(), kv_size = config.kv_size();
  const bool sharded = shard.size > 1;
  // Rows of query_key_value [q | k | v] this rank keeps: its query heads, then its KV groups
  // in the k block and in the v block.
  const int64_t q0 = shard.first_head * d, q1 = q0 + shard.num_heads * d;
  const int64_t g0 = shard.first_kv_head * d, g1 = g0 + shard.num_kv_heads * d;
  const std::vector<IndexRange> qkv_rows = {
      {q0, q1}, {q_size + g0, q_size + g1}, {q_size + kv_size + g0, q_size + kv_size + g1}};
  // Rows of dense_h_to_4h [gate | up]: the same slice of both halves.
  const int64_t f0 = shard.first_ffn, f1 = f0 + shard.ffn;
  const std::vector<IndexRange> h_to_4h_rows = {{f0, f1}, {ffn + f0, ffn + f1}};
  const std::vector<IndexRange> vocab_rows = {{shard.first_vocab, shard.first_vocab + shard.vocab}};
  // Row-parallel biases are added by rank 0 only, so the all-reduce counts them once.
  const bool owns_row_bias = shard.rank == 0;

  SliceReader read(checkpoint);
  // Host tensors are read in their storage dtype, so bf16 needs no f32 round trip.
  auto upload = [&](absl::StatusOr<Tensor> host) -> absl::StatusOr<Tensor> {
    if (!host.ok()) return host.status();
    return backend->Upload(*host, host->dtype());
  };
  // Linear weights: quantized here when the options ask (each rank its own slice).
  // A quantized matrix drops the mapped file's pages it was read from (the float bytes would
  // otherwise stay resident next to their quantized copy).
  auto upload_matrix = [&](absl::StatusOr<Tensor> host, const std::string& name,
                           bool is_output_layer = false) -> absl::StatusOr<LinearWeight> {
    if (!host.ok()) return host.status();
    absl::StatusOr<LinearWeight> w = UploadMatrix(backend, *host, options, mat, is_output_layer);
    if (w.ok() && w->quantized()) checkpoint.ReleasePages(name);
    return w;
  };
  const std::string p = "transformer.";
  DecoderWeights w;
  w.shard = shard;
  {
    const std::string name = p + "embedding.word_embeddings.weight";
    if (!sharded) {
      ASSIGN_OR_RETURN(w.word_embeddings, upload(read.All(name, {vocab, hidden}, mat)));
    } else {
      ASSIGN_OR_RETURN(Tensor rows, read.Rows(name, {vocab, hidden}, vocab_rows, mat));
      Tensor table = Tensor::Zeros(mat, {shard.vocab + 1, hidden});
      std::memcpy(table.raw_data(), rows.raw_data(), rows.nbytes());
      ASSIGN_OR_RETURN(w.word_embeddings, upload(table));
    }
  }
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string q = absl::StrCat(p, "encoder.layers.", l, ".");
    DecoderLayerWeights layer;
    ASSIGN_OR_RETURN(layer.input_norm, upload(read.All(q + "input_layernorm.weight", {hidden}, act)));
    {
      const std::string name = q + "self_attention.query_key_value.weight";
      ASSIGN_OR_RETURN(layer.qkv_weight,
                       upload_matrix(read.Rows(name, {qkv, hidden}, qkv_rows, mat), name));
    }
    if (config.add_qkv_bias) {
      ASSIGN_OR_RETURN(layer.qkv_bias, upload(read.Rows(q + "self_attention.query_key_value.bias",
                                                        {qkv}, qkv_rows, act)));
    }
    {
      const std::string name = q + "self_attention.dense.weight";
      ASSIGN_OR_RETURN(layer.dense_weight,
                       upload_matrix(read.Columns(name, {hidden, q_size}, {q0, q1}, mat), name));
    }
    ASSIGN_OR_RETURN(layer.post_norm,
                     upload(read.All(q + "post_attention_layernorm.weight", {hidden}, act)));
    {
      const std::string name = q + "mlp.dense_h_to_4h.weight";
      ASSIGN_OR_RETURN(layer.h_to_4h_weight,
                       upload_matrix(read.Rows(name, {2 * ffn, hidden}, h_to_4h_rows, mat), name));
    }
    {
      const std::string name = q + "mlp.dense_4h_to_h.weight";
      ASSIGN_OR_RETURN(layer.four_h_to_h_weight,
                       upload_matrix(read.Columns(name, {hidden, ffn}, {f0, f1}, mat), name));
    }
    if (config.add_bias_linear) {
      if (owns_row_bias) {
        ASSIGN_OR_RETURN(layer.dense_bias,
                         upload(read.All(q + "self_attention.dense.bias", {hidden}, act)));
        ASSIGN_OR_RETURN(layer.four_h_to_h_bias,
                         upload(read.All(q + "mlp.dense_4h_to_h.bias", {hidden}, act)));
      }
      ASSIGN_OR_RETURN(layer.h_to_4h_bias,
                       upload(read.Rows(q + "mlp.dense_h_to_4h.bias", {2 * ffn}, h_to_4h_rows, act)));
    }
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm, upload(read.All(p + "encoder.final_layernorm.weight", {hidden}, act)));
  {
    const std::string name = p + "output_layer.weight";
    ASSIGN_OR_RETURN(w.output_layer,
                     upload_matrix(read.Rows(name, {vocab, hidden}, vocab_rows, mat), name,
                                   /*is_output_layer=*/true));
  }
  w.checkpoint_bytes_read = read.bytes_read();
  return w;
}

int64_t DecoderWeights::HeldBytes() const {
  auto bytes = [](const Tensor& t) -> int64_t { return t.defined() ? t.nbytes() : 0; };
  int64_t total = bytes(word_embeddings) + bytes(final_norm) + output_layer.nbytes();
  for (const DecoderLayerWeights& l : layers) {
    for (const Tensor* t : {&l.input_norm, &l.qkv_bias, &l.dense_bias, &l.post_norm,
                            &l.h_to_4h_bias, &l.four_h_to_h_bias}) {
      total += bytes(*t);
    }
    for (const LinearWeight* m :
         {&l.qkv_weight, &l.dense_weight, &l.h_to_4h_weight, &l.four_h_to_h_weight}) {
      total += m->nbytes();
    }
  }
  return total;
}

}  // namespace glm4v

