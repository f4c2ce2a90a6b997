// The ChatGLM (GLM-4) language decoder: one forward step over a batch of sequences with a
// paged KV cache (continuous batching: prefill chunks and decode tokens mixed in one step).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "kernels/ops.h"
#include "model/decoder_batch.h"
#include "model/decoder_weights.h"
#include "model/kv_cache.h"

namespace glm4v {

class Decoder {
 public:
  static absl::StatusOr<std::unique_ptr<Decoder>> Load(const Checkpoint& checkpoint,
                                                       const ModelConfig& config,
                                                       Backend* backend);
  Decoder(const ModelConfig& config, DecoderWeights weights, Backend* backend);

  // Runs every new token of every sequence through the decoder: token rows of all sequences
  // are concatenated into one [T, hidden] activation for the GEMMs; attention is per sequence
  // over its paged KV (cached + new, causal among the new). Writes the new tokens' K/V into
  // `cache` and returns the requested logits rows (on the backend's device; host for the CPU).
  // Malformed batches (ids outside the vocabulary, short block tables, size mismatches, a
  // cache of the wrong shape...) are INVALID_ARGUMENT and leave the cache untouched.
  // Safe to call concurrently with distinct caches/blocks: the decoder holds no step state.
  absl::StatusOr<DecoderOutput> Forward(const DecoderBatch& batch, PagedKvCache* cache) const;

  // The KV cache shape this decoder needs for `num_blocks` blocks of `block_size` tokens.
  KvCacheShape CacheShape(int num_blocks, int block_size) const;

  const ModelConfig& config() const { return config_; }
  Backend* backend() const { return backend_; }

 private:
  absl::Status Validate(const DecoderBatch& batch, const PagedKvCache& cache) const;

  ModelConfig config_;
  DecoderWeights weights_;
  Backend* backend_;
};

}  // namespace glm4v
