// One request inside the engine: its spliced prompt, generated tokens, sampling state and
// where its KV lives. The KV length (rows, including 1602 per image) and the RoPE position
// (which counts an image as 3) differ; both are carried per row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "common/tensor.h"
#include "common/block_hash.h"
#include "worker/sampling_params.h"

namespace glm4v::worker {

enum class FinishReason : uint8_t { kNone, kStop, kLength, kCancelled };

// An image's rows inside the sequence's concatenated feature tensor.
struct SequenceImage {
  BlockHash content_hash;
  int32_t first_feature_row = 0;  // row of the boi row in `image_features`
  int32_t num_rows = 0;
};

// The spliced prompt a sequence starts from (see model/image_splice.h).
struct SequencePrompt {
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;
  // Empty for text-only prompts; otherwise -1 (text) or a row of `image_features`.
  std::vector<int32_t> embedding_rows;
  int32_t next_position = 0;
  std::vector<SequenceImage> images;
  Tensor image_features;  // f32 [rows, hidden], all images concatenated; undefined if none
};

struct Sequence {
  enum class State : uint8_t { kWaiting, kRunning, kFinished };

  Sequence(std::string request_id, uint64_t arrival_index, SequencePrompt prompt,
           SamplingParams params, uint64_t seed, absl::flat_hash_set<int32_t> seen_tokens,
           int max_total_tokens);

  int prompt_len() const { return static_cast<int>(prompt.token_ids.size()); }
  // Rows whose token is known (the prompt and the generated tokens).
  int num_known_tokens() const { return prompt_len() + static_cast<int>(output_ids.size()); }
  // Known rows plus the token a step in flight is sampling (step overlap, see
  // StartPendingToken): the scheduler plans that row before its id exists.
  int num_tokens() const { return num_known_tokens() + num_pending_tokens; }
  // Known rows whose KV is not in the cache yet.
  int num_uncomputed() const { return num_tokens() - num_computed; }

  // Row i of the whole sequence (prompt rows, then generated tokens); kPendingTokenId for the
  // row of a token still being sampled.
  static constexpr int32_t kPendingTokenId = -1;
  int32_t TokenId(int i) const;
  int32_t Position(int i) const;
  int32_t EmbeddingRow(int i) const;  // -1 = word embedding

  // Content hashes of the first `num_blocks` full blocks (computed once, then cached).
  // Requires num_blocks * block_size <= num_known_tokens().
  const std::vector<BlockHash>& BlockHashes(int num_blocks, int block_size);

  // Appends a generated token (position next_position + its output index).
  void AppendToken(int32_t token_id);
  // A step that samples this sequence's next token was launched: its row counts in
  // num_tokens() until ResolvePendingToken (the token) or DropPendingToken (the step failed).
  void StartPendingToken();
  void ResolvePendingToken(int32_t token_id);
  void DropPendingToken();

  // --- Identity and request parameters (fixed after admission) ---
  const std::string request_id;
  const uint64_t arrival_index;  // admission order; larger = younger
  const SequencePrompt prompt;
  const SamplingParams params;
  const uint64_t seed;
  // Generation stops with LENGTH when num_tokens() reaches this (model / cache limit).
  const int max_total_tokens;

  // --- Generation state ---
  std::vector<int32_t> output_ids;
  int num_pending_tokens = 0;  // 0 or 1: sampled by the step in flight, id not known yet
  // The step in flight is certainly this sequence's last (its pending token reaches the length
  // limit, or a cancel waits for that step): the scheduler plans nothing more for it.
  bool ends_after_step = false;
  absl::flat_hash_set<int32_t> seen_tokens;  // prompt ids + outputs (repetition penalty)
  // How often each id was generated; kept only when a presence / frequency penalty is set.
  absl::flat_hash_map<int32_t, int32_t> output_counts;
  FinishReason finish_reason = FinishReason::kNone;

  // --- Scheduling state (owned by the Scheduler) ---
  State state = State::kWaiting;
  int num_computed = 0;              // rows whose KV is in the cache
  std::vector<int32_t> block_table;  // block ids for rows [0, num_computed + scheduled)
  int num_registered_blocks = 0;     // leading full blocks already offered to the prefix cache
  int num_preemptions = 0;
  bool admitted_once = false;
  int cached_prompt_tokens = 0;  // prompt rows reused from the prefix cache at first admission

  // --- Timing ---
  absl::Time arrival_time;
  absl::Time first_scheduled_time = absl::InfiniteFuture();
  absl::Time first_token_time = absl::InfiniteFuture();

 private:
  std::vector<BlockHash> block_hashes_;
};

}  // namespace glm4v::worker
