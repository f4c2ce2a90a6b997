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

class Decoder {
 public:
  static absl::StatusOr<std::unique_ptr<Decoder>> Load(const Checkpoint& checkpoint,
                                                       const ModelConfig& config,
                                                       Backend* backend,
                                                       const TensorParallelContext& tp = {});
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

  // The KV cache shape this decoder needs for `num_blocks` blocks of `block_size` tokens
  // (this rank's KV groups only).
  KvCacheShape CacheShape(int num_blocks, int block_size) const;

  const ModelConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }
  const TensorParallelShard& shard() const { return weights_.shard; }
  const DecoderWeights& weights() const { return weights_; }

 private:
  // Sums `t` over the group in place (no-op unsharded).
  absl::Status AllReduce(Tensor* t) const;
  // Vocab-parallel logits [rows, vocab_local] -> full logits [rows, vocab] on every rank.
  absl::StatusOr<Tensor> GatherLogits(const Tensor& local) const;

  ModelConfig config_;
  DecoderWeights weights_;
  Backend* backend_;
  TensorParallelContext tp_;
};

}  // namespace glm4v
