// How many bytes each process of the system holds, computed from the model's config: the
// weights one rank keeps (in their storage format, tensor-parallel slice included), the KV cache
// per token, the vision feature cache, and the activation scratch of a step. The serving
// binaries log these figures at startup next to what they actually hold; docs/DEPLOYMENT.md's
// sizing tables and the deploy test's memory checks come from the same functions
// (tools/sizing). //model:memory_sizing_test holds the weight figures equal to what the loaders
// really allocate, for every format and TP size.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "common/model_config.h"
#include "kernels/linear_weight.h"

namespace glm4v {

// How the weights are stored (model/weight_options.h resolved for one backend).
struct WeightStorage {
  WeightFormat linear = WeightFormat::kFloat;  // Linear matrices (decoder, vision, projector)
  DType matrix = DType::kBF16;      // float matrices and the embedding table
  DType activation = DType::kBF16;  // norms, biases, position embeddings (CPU: f32)
  bool quantize_output_layer = false;
};

// Bytes of one Linear weight [out, in] in `format` (float: `matrix` dtype), scales and zero
// points included (kernels/linear_weight.h).
int64_t LinearWeightBytes(int64_t out, int64_t in, WeightFormat format, DType matrix);

// Decoder weights rank `rank` of `tp_size` holds (model/decoder_weights.h: vocab-parallel
// embedding with its zero row, column/row-parallel Linears, replicated KV groups beyond the
// model's groups). INVALID_ARGUMENT when the model cannot be split that way.
absl::StatusOr<int64_t> DecoderWeightBytes(const ModelConfig& config, int rank, int tp_size,
                                           const WeightStorage& storage);

// Vision tower + projector (model/vision_weights.h); not tensor-parallel.
int64_t VisionWeightBytes(const ModelConfig& config, const WeightStorage& storage);

// K and V of one token on one rank: layers x 2 x local KV groups x head dim x dtype bytes
// (groups are split up to the model's count, then replicated).
absl::StatusOr<int64_t> KvBytesPerTokenPerRank(const ModelConfig& config, int tp_size,
                                               DType kv_dtype);

// One image's feature rows (boi + 1,600 + eoi) x hidden in `dtype`: a feature-cache entry and
// the wire payload.
int64_t FeatureBytesPerImage(const ModelConfig& config, DType dtype);

// Largest activation scratch of a decoder step of `max_batched_tokens` rows on one rank
// (activation dtype): hidden states, the qkv and MLP intermediates, the logits of
// `max_seqs` rows (f32), plus the dequantized weight panel of quantized GPU prefill (64 MiB).
absl::StatusOr<int64_t> DecoderActivationBytes(const ModelConfig& config, int tp_size,
                                               int64_t max_batched_tokens, int64_t max_seqs,
                                               DType activation, WeightFormat linear);

// Largest activation scratch of a vision batch of `images` (activation dtype): the tower's
// token rows through qkv, MLP and attention output, and the projector's rows.
int64_t VisionActivationBytes(const ModelConfig& config, int64_t images, DType activation);

// What a GPU must hold for one worker rank (and optionally the vision service beside it), and
// how many tokens of KV cache fit in the rest. Reserve: the CUDA context, cuBLASLt workspace
// and NCCL buffers (kGpuRuntimeReserveBytes).
constexpr int64_t kGpuRuntimeReserveBytes = int64_t{1} << 30;

struct GpuPlan {
  int64_t gpu_bytes = 0;
  int64_t decoder_weights = 0;
  int64_t vision_weights = 0;       // 0 unless vision shares the GPU
  int64_t feature_cache = 0;        // entries x FeatureBytesPerImage (vision on this GPU)
  int64_t activations = 0;          // decoder step (+ vision batch when it shares the GPU)
  int64_t reserve = kGpuRuntimeReserveBytes;
  int64_t kv_cache = 0;             // the KV budget: the fixed one, or all that is left
  int64_t kv_bytes_per_token = 0;   // per rank
  // Tokens of context the group holds: kv_cache / kv_bytes_per_token (0 when negative), times
  // the decode context parallel size (each rank of a KV group holds 1/dcp of the tokens).
  int64_t kv_tokens = 0;
  int64_t headroom = 0;             // gpu_bytes minus everything above (negative: over)
  bool fits() const { return kv_cache > 0 && headroom >= 0; }
};

struct GpuPlanRequest {
  int64_t gpu_bytes = 0;
  int tp_size = 1;
  WeightStorage decoder;
  DType kv_dtype = DType::kBF16;
  int64_t max_batched_tokens = 4096;
  int64_t max_seqs = 128;
  // Vision on the same GPU (a single-GPU deployment): its storage, cache entries and batch.
  bool vision_on_gpu = false;
  WeightStorage vision;
  int64_t feature_cache_entries = 0;
  DType feature_dtype = DType::kBF16;
  int64_t vision_batch = 1;
  // 0: everything left after the rest goes to KV (as --kv_cache_fraction=1 would); else the
  // fixed KV budget (--kv_cache_bytes), and kv_cache reports what is left beyond it.
  int64_t kv_cache_bytes = 0;
  // Decode context parallelism (model/tensor_parallel.h CheckDecodeContextParallel).
  int decode_context_parallel = 1;
};

absl::StatusOr<GpuPlan> PlanGpu(const ModelConfig& config, const GpuPlanRequest& request);

}  // namespace glm4v
