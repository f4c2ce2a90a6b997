// One forward step of the decoder over a batch of sequences (continuous batching): each sequence
// contributes a run of new tokens (a whole or chunked prefill, or one decode token) that attend
// to its already-cached KV plus themselves, causally.
#pragma once

#include <cstdint>
#include <vector>

#include "common/tensor.h"

namespace glm4v {

struct SequenceChunk {
  // New input tokens of this step. For image rows, the id is ignored and the row of
  // `embeddings` at the same index is used instead (see embedding_rows).
  std::vector<int32_t> token_ids;
  // RoPE position of each new token (GLM-4V: all image patch rows share one position).
  std::vector<int32_t> positions;
  // Optional per-token embedding overrides: for token i, if embedding_rows[i] >= 0 the decoder
  // uses row embedding_rows[i] of `embeddings` instead of the word embedding. Empty = none.
  std::vector<int32_t> embedding_rows;
  Tensor embeddings;  // f32 [rows, hidden] (image features, already scaled), or undefined
  // KV slots: tokens [0, num_cached) are already in the cache; the new tokens are written at
  // cache indices [num_cached, num_cached + token_ids.size()).
  int32_t num_cached = 0;
  std::vector<int32_t> block_table;  // enough blocks for num_cached + token_ids.size()
  // Which new tokens need logits: kLast (sampling), kAll (golden checks), kNone (chunk middle).
  enum class Logits : uint8_t { kNone, kLast, kAll } logits = Logits::kLast;
};

struct DecoderBatch {
  std::vector<SequenceChunk> sequences;
};

// Logits rows in batch order: for each sequence, 0 / 1 / token_ids.size() rows per `logits`.
struct DecoderOutput {
  Tensor logits;                     // f32 [total_rows, vocab]
  std::vector<int32_t> row_offsets;  // first logits row of each sequence (size = batch + 1)
};

}  // namespace glm4v
