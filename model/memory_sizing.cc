#include "model/memory_sizing.h"

#include <algorithm>

#include "common/status_macros.h"
#include "model/tensor_parallel.h"

namespace glm4v {
namespace {

int64_t Bytes(int64_t elements, DType dtype) {
  return elements * static_cast<int64_t>(DTypeSize(dtype));
}

}  // namespace

int64_t LinearWeightBytes(int64_t out, int64_t in, WeightFormat format, DType matrix) {
  switch (format) {
    case WeightFormat::kFloat:
      return Bytes(out * in, matrix);
    case WeightFormat::kInt8:
    case WeightFormat::kFp8:
      return out * in + out * 4;  // values + one f32 scale per row
    case WeightFormat::kInt4:
      return out * Int4RowBytes(in) + out * Int4Groups(in) * (4 + 1);  // + scales, zeros
  }
  return 0;
}

absl::StatusOr<int64_t> DecoderWeightBytes(const ModelConfig& config, int rank, int tp_size,
                                           const WeightStorage& storage) {
  ASSIGN_OR_RETURN(const TensorParallelShard shard, PlanShard(config, rank, tp_size));
  const int64_t hidden = config.hidden_size, d = config.kv_channels;
  const WeightFormat f = storage.linear;
  auto linear = [&](int64_t out, int64_t in) {
    return LinearWeightBytes(out, in, f, storage.matrix);
  };
  auto small = [&](int64_t n) { return Bytes(n, storage.activation); };
  const int64_t local_qkv = (int64_t{shard.num_heads} + 2 * shard.num_kv_heads) * d;
  int64_t layer = small(hidden) * 2;  // input and post-attention norms
  layer += linear(local_qkv, hidden) + linear(hidden, int64_t{shard.num_heads} * d) +
           linear(2 * shard.ffn, hidden) + linear(hidden, shard.ffn);
  if (config.add_qkv_bias) layer += small(local_qkv);
  if (config.add_bias_linear) {
    layer += small(2 * shard.ffn);
    if (shard.rank == 0) layer += small(hidden) * 2;  // row-parallel biases, added once
  }
  // The embedding table: the rank's vocabulary rows, plus one zero row when sharded.
  const int64_t embedding_rows = tp_size > 1 ? shard.vocab + 1 : shard.vocab;
  const WeightFormat head = storage.quantize_output_layer ? f : WeightFormat::kFloat;
  return Bytes(embedding_rows * hidden, storage.matrix) + layer * config.num_layers +
         small(hidden) + LinearWeightBytes(shard.vocab, hidden, head, storage.matrix);
}

int64_t VisionWeightBytes(const ModelConfig& config, const WeightStorage& storage) {
  const VisionConfig& v = config.vision;
  const int64_t vh = v.hidden_size, inter = v.intermediate_size, h = config.hidden_size;
  const int64_t ffn = config.ffn_hidden_size;
  const int64_t patch_in = int64_t{v.in_channels} * v.patch_size * v.patch_size;
  auto linear = [&](int64_t out, int64_t in) {
    return LinearWeightBytes(out, in, storage.linear, storage.matrix);
  };
  auto small = [&](int64_t n) { return Bytes(n, storage.activation); };
  int64_t total = linear(vh, patch_in) + small(vh) + small(vh) +
                  small((int64_t{v.num_patches()} + 1) * vh);
  const int64_t layer = linear(3 * vh, vh) + small(3 * vh) + linear(vh, vh) + small(vh) +
                        small(2 * vh) + linear(inter, vh) + small(inter) + linear(vh, inter) +
                        small(vh) + small(2 * vh);
  total += layer * v.num_hidden_layers;
  total += linear(h, vh * 4) + small(h) + linear(h, h) + small(2 * h) + linear(2 * ffn, h) +
           linear(h, ffn) + small(2 * h);
  return total;
}

absl::StatusOr<int64_t> KvBytesPerTokenPerRank(const ModelConfig& config, int tp_size,
                                               DType kv_dtype) {
  ASSIGN_OR_RETURN(const TensorParallelShard shard, PlanShard(config, 0, tp_size));
  return Bytes(int64_t{config.num_layers} * 2 * shard.num_kv_heads * config.kv_channels,
               kv_dtype);
}

int64_t FeatureBytesPerImage(const ModelConfig& config, DType dtype) {
  return Bytes(int64_t{config.vision.feature_rows()} * config.hidden_size, dtype);
}

absl::StatusOr<int64_t> DecoderActivationBytes(const ModelConfig& config, int tp_size,
                                               int64_t max_batched_tokens, int64_t max_seqs,
                                               DType activation, WeightFormat linear) {
  ASSIGN_OR_RETURN(const TensorParallelShard shard, PlanShard(config, 0, tp_size));
  const int64_t hidden = config.hidden_size, d = config.kv_channels;
  const int64_t local_qkv = (int64_t{shard.num_heads} + 2 * shard.num_kv_heads) * d;
  // Live at the MLP: residual, normed input, attention output, the gate|up product and its
  // silu * up half; qkv is freed by then but is the peak of the attention half.
  const int64_t per_row = 3 * hidden + std::max(local_qkv + int64_t{shard.num_heads} * d,
                                                2 * shard.ffn + shard.ffn);
  int64_t total = Bytes(max_batched_tokens * per_row, activation);
  total += Bytes(max_seqs * shard.vocab, DType::kF32) * 2;  // local logits + gathered copy
  if (linear != WeightFormat::kFloat) total += int64_t{64} << 20;  // dequantized panel
  return total;
}

int64_t VisionActivationBytes(const ModelConfig& config, int64_t images, DType activation) {
  const VisionConfig& v = config.vision;
  const int64_t rows = images * (int64_t{v.num_patches()} + 1);
  // Residual + normed rows, qkv (3 vh) and the MLP's intermediate, whichever half is larger,
  // then the projector's rows (hidden and 2 x ffn) on the merged tokens.
  const int64_t tower = rows * (2 * v.hidden_size +
                                std::max<int64_t>(4 * v.hidden_size, v.intermediate_size));
  const int64_t projector =
      images * v.image_tokens() * (2 * int64_t{config.hidden_size} + 3 * config.ffn_hidden_size);
  return Bytes(std::max(tower, projector), activation);
}

absl::StatusOr<GpuPlan> PlanGpu(const ModelConfig& config, const GpuPlanRequest& r) {
  GpuPlan plan;
  plan.gpu_bytes = r.gpu_bytes;
  ASSIGN_OR_RETURN(plan.decoder_weights, DecoderWeightBytes(config, 0, r.tp_size, r.decoder));
  ASSIGN_OR_RETURN(plan.activations,
                   DecoderActivationBytes(config, r.tp_size, r.max_batched_tokens, r.max_seqs,
                                          r.decoder.activation, r.decoder.linear));
  if (r.vision_on_gpu) {
    plan.vision_weights = VisionWeightBytes(config, r.vision);
    plan.feature_cache = r.feature_cache_entries * FeatureBytesPerImage(config, r.feature_dtype);
    plan.activations += VisionActivationBytes(config, r.vision_batch, r.vision.activation);
  }
  ASSIGN_OR_RETURN(plan.kv_bytes_per_token, KvBytesPerTokenPerRank(config, r.tp_size,
                                                                   r.kv_dtype));
  const int dcp = r.decode_context_parallel;
  RETURN_IF_ERROR(CheckDecodeContextParallel(config, r.tp_size, dcp));
  if (dcp > 1) {
    // The group's queries, their partial outputs (activation dtype) and log-sum-exps (f32)
    // for every row of a step, plus the all-gathered copies of both on the host side.
    ASSIGN_OR_RETURN(const TensorParallelShard shard, PlanShard(config, 0, r.tp_size));
    const int64_t group_heads = int64_t{dcp} * shard.num_heads;
    plan.activations += Bytes(2 * r.max_batched_tokens * group_heads * config.kv_channels,
                              r.decoder.activation) +
                        Bytes(r.max_batched_tokens * group_heads, DType::kF32);
  }
  const int64_t fixed = plan.decoder_weights + plan.vision_weights + plan.feature_cache +
                        plan.activations + plan.reserve;
  plan.kv_cache = r.kv_cache_bytes > 0 ? r.kv_cache_bytes : r.gpu_bytes - fixed;
  plan.headroom = r.gpu_bytes - fixed - plan.kv_cache;
  plan.kv_tokens = plan.kv_cache > 0 ? plan.kv_cache / plan.kv_bytes_per_token * dcp : 0;
  return plan;
}

}  // namespace glm4v
