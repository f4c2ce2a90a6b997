// One step's sampling as a backend sees it (Backend::SampleRows, sampling on the device): each
// logits row's settings, its sparse id lists (CSR), and what comes back to the host: the
// chosen ids and only the logprobs that were asked for.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace glm4v {

struct RowSamplingParams {
  float temperature = 0.0f;         // <= 0: greedy (as is top_k == 1)
  int32_t top_k = 0;                // 0 or >= vocab: off
  float top_p = 1.0f;               // >= 1: off
  float repetition_penalty = 1.0f;  // over the row's penalty ids; 1: off
  // Key the draw: a backend's draw is a pure function of (seed, step, the processed row), so a
  // seeded request samples the same whatever else shares its batch.
  uint64_t seed = 0;
  uint64_t step = 0;
  bool logprobs = false;     // report the chosen token's logprob
  int32_t top_logprobs = 0;  // and this many best alternatives
};

// Most alternatives a row may ask for (the device top-n kernel's bound).
inline constexpr int kMaxSampledTopLogprobs = 64;

struct SamplingBatchHost {
  std::vector<RowSamplingParams> rows;
  // Row r's penalty ids are penalty_ids[penalty_offsets[r], penalty_offsets[r + 1]) (ids seen
  // in the prompt and output, each once); suppressed ids (stop ids before min_tokens) alike.
  std::vector<int32_t> penalty_offsets = {0};
  std::vector<int32_t> penalty_ids;
  std::vector<int32_t> suppress_offsets = {0};
  std::vector<int32_t> suppress_ids;
  // Additive adjustments, applied first: adjust_values[j] is added to the logit of
  // adjust_ids[j] (logit_bias plus the presence / frequency penalties; ids unique per row).
  std::vector<int32_t> adjust_offsets = {0};
  std::vector<int32_t> adjust_ids;
  std::vector<float> adjust_values;

  int num_rows() const { return static_cast<int>(rows.size()); }
  // Appends a row with its id lists (adjust_ids and adjust_values of equal length).
  void AddRow(const RowSamplingParams& params, absl::Span<const int32_t> penalty,
              absl::Span<const int32_t> suppress, absl::Span<const int32_t> adjust_ids = {},
              absl::Span<const float> adjust_values = {});
  absl::Span<const int32_t> penalty(int row) const;
  absl::Span<const int32_t> suppressed(int row) const;
  absl::Span<const int32_t> adjusted_ids(int row) const;
  absl::Span<const float> adjustments(int row) const;
  // Most alternatives any row asked for.
  int max_top_logprobs() const;
  bool any_logprobs() const;
};

// What comes back from a sampled step, rows in batch order.
struct SampledRows {
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;  // chosen token's logprob; 0 where not asked for
  int top_count = 0;            // max_top_logprobs() of the batch
  // [rows, top_count], best first; a row that asked for fewer is padded with id -1.
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;
};

// INVALID_ARGUMENT unless the batch has `rows` rows, consistent offsets, ids in [0, vocab),
// one finite value per adjusted id,
// temperature/top_p/penalty finite with penalty > 0, top_k >= 0 and top_logprobs in
// [0, kMaxSampledTopLogprobs].
absl::Status ValidateSamplingBatch(const SamplingBatchHost& batch, int64_t rows, int64_t vocab);

}  // namespace glm4v
