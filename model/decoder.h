// The ChatGLM (GLM-4) language decoder: one forward step over a batch of sequences with a
// paged KV cache (continuous batching: prefill chunks and decode tokens mixed in one step).
//
// Tensor parallel: Load() with a TensorParallelContext of size > 1 loads only that rank's
// shard (model/tensor_parallel.h); every rank of the group then calls Forward() with the same
// batch, in the same order, and each gets the full logits. The KV cache of a rank holds only
// its local KV groups (CacheShape()).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "kernels/ops.h"
#include "model/decoder_batch.h"
#include "model/decoder_weights.h"
#include "model/kv_cache.h"
#include "model/tensor_parallel.h"

namespace glm4v {

// The host half of one step: the batch flattened into token rows (T) and logits rows (R).
struct DecoderPlan {
  std::vector<int32_t> ids;        // [T] embedding table row per token (image rows: a dummy row)
  std::vector<int32_t> positions;  // [T] RoPE positions
  std::vector<int32_t> slots;      // [T] KV cache slot per token (negative: not written)
  std::vector<int32_t> logit_rows; // [R] token rows that produce logits, in output order
  PagedBatchHost attention;        // per sequence: its token rows and block table
  std::vector<int32_t> row_offsets;  // DecoderOutput::row_offsets (sequences + 1)
  // Image embedding rows copied over their placeholder token rows after the word embeddings.
  struct ImageRows {
    int source = 0;  // index into image_sources
    int64_t src_row = 0, num_rows = 0, dst_row = 0;
  };
  std::vector<Tensor> image_sources;  // SequenceChunk::embeddings (host or device)
  std::vector<ImageRows> image_rows;

  int64_t num_tokens() const { return static_cast<int64_t>(ids.size()); }
  int64_t num_logit_rows() const { return static_cast<int64_t>(logit_rows.size()); }
};

// The device half's inputs: a plan's index arrays as i32 tensors on the backend (ids,
// positions and slots [T], logit_rows [R]) and its image rows on the device, in the
// activation dtype or any float dtype (CopyRows converts).
struct DecoderStepInputs {
  Tensor ids, positions, slots, logit_rows;
  PagedBatch attention;
  std::vector<Tensor> image_sources;
  std::vector<DecoderPlan::ImageRows> image_rows;
};

class Decoder {
 public:
  static absl::StatusOr<std::unique_ptr<Decoder>> Load(const Checkpoint& checkpoint,
                                                       const ModelConfig& config,
                                                       Backend* backend,
                                                       const TensorParallelContext& tp = {},
                                                       const WeightLoadOptions& weights = {});
  // A decoder over already loaded weights (LoadDecoderWeights with PlanShard(config, tp.rank,
  // tp.size)); checks the config, the shard and the communicator.
  static absl::StatusOr<std::unique_ptr<Decoder>> Create(const ModelConfig& config,
                                                         DecoderWeights weights, Backend* backend,
                                                         const TensorParallelContext& tp = {});
  // Unchecked; unsharded weights (weights.shard.size == 1) need no context.
  Decoder(const ModelConfig& config, DecoderWeights weights, Backend* backend,
          const TensorParallelContext& tp = {});

  // Runs every new token of every sequence through the decoder: token rows of all sequences
  // are concatenated into one [T, hidden] activation for the GEMMs; attention is per sequence
  // over its paged KV (cached + new, causal among the new). Writes the new tokens' K/V into
  // `cache` and returns the requested logits rows (on the backend's device; host for the CPU).
  // Malformed batches (ids outside the vocabulary, short block tables, size mismatches, a
  // cache of the wrong shape...) are INVALID_ARGUMENT and leave the cache untouched.
  // Safe to call concurrently with distinct caches/blocks: the decoder holds no step state
  // (unsharded only: a sharded decoder's collectives are ordered across ranks).
  // Sharded: communicator failures are returned as they come (UNAVAILABLE/DEADLINE_EXCEEDED).
  absl::StatusOr<DecoderOutput> Forward(const DecoderBatch& batch, PagedKvCache* cache) const;

  // The checks Forward starts with (no collectives; identical on every rank for one batch).
  absl::Status Validate(const DecoderBatch& batch, const PagedKvCache& cache) const;

  // Validate, then flatten `batch` (block tables are cut to the blocks each sequence needs).
  absl::StatusOr<DecoderPlan> Plan(const DecoderBatch& batch, const PagedKvCache& cache) const;
  // The plan's index arrays as new device tensors; host image rows uploaded in the activation
  // dtype.
  absl::StatusOr<DecoderStepInputs> UploadPlan(const DecoderPlan& plan) const;
  // The layers over a planned step: writes the step's K/V into `cache` and the logits of
  // step.logit_rows into `logits` (f32 [R, vocab] on the backend's device, allocated by the
  // caller). Trusts its inputs (a Plan of a batch validated against this cache). Without image
  // rows and unsharded it only reads `step`'s tensors, the weights and the cache, so a capturing
  // backend may record it (Backend::RunCaptured); sharded it runs the collectives.
  absl::Status Run(const DecoderStepInputs& step, PagedKvCache* cache, Tensor* logits) const;
  // UploadPlan + Run into new logits: the rest of Forward after Plan.
  absl::StatusOr<DecoderOutput> RunPlan(DecoderPlan plan, PagedKvCache* cache) const;

  // The KV cache shape this decoder needs for `num_blocks` blocks of `block_size` tokens
  // (this rank's KV groups only).
  KvCacheShape CacheShape(int num_blocks, int block_size) const;

  const ModelConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }
  const TensorParallelShard& shard() const { return weights_.shard; }
  // The share of each sequence's tokens this rank's KV cache holds (decode context
  // parallelism; {1, 0}: all of them). A block table entry then covers block_size * size
  // tokens of the sequence.
  const ContextShare& context_share() const { return share_; }
  const DecoderWeights& weights() const { return weights_; }

 private:
  // Sums `t` over the group in place (no-op unsharded).
  absl::Status AllReduce(Tensor* t) const;
  // Vocab-parallel logits [rows, vocab_local] -> full logits [rows, vocab] on every rank,
  // written into `logits`.
  absl::Status GatherLogits(const Tensor& local, Tensor* logits) const;

  ModelConfig config_;
  DecoderWeights weights_;
  Backend* backend_;
  TensorParallelContext tp_;
  ContextShare share_;
};

}  // namespace glm4v
