#include "kernels/sampling_batch.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace glm4v {
namespace {

absl::Status CheckList(const std::vector<int32_t>& offsets, const std::vector<int32_t>& ids,
                       int64_t rows, int64_t vocab, const char* name) {
  if (static_cast<int64_t>(offsets.size()) != rows + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<int32_t>(ids.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("SampleRows: ", name, " offsets do not describe ", rows, " rows"));
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (offsets[r + 1] < offsets[r]) {
      return absl::InvalidArgumentError(absl::StrCat("SampleRows: ", name, " offsets decrease"));
    }
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("SampleRows: ", name, " id ", id, " outside the vocabulary of ", vocab));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void SamplingBatchHost::AddRow(const RowSamplingParams& params,
                               absl::Span<const int32_t> penalty,
                               absl::Span<const int32_t> suppress,
                               absl::Span<const int32_t> adjust, absl::Span<const float> values) {
  rows.push_back(params);
  adjust_ids.insert(adjust_ids.end(), adjust.begin(), adjust.end());
  adjust_values.insert(adjust_values.end(), values.begin(), values.end());
  adjust_offsets.push_back(static_cast<int32_t>(adjust_ids.size()));
  penalty_ids.insert(penalty_ids.end(), penalty.begin(), penalty.end());
  penalty_offsets.push_back(static_cast<int32_t>(penalty_ids.size()));
  suppress_ids.insert(suppress_ids.end(), suppress.begin(), suppress.end());
  suppress_offsets.push_back(static_cast<int32_t>(suppress_ids.size()));
}

absl::Span<const int32_t> SamplingBatchHost::penalty(int row) const {
  return absl::MakeConstSpan(penalty_ids)
      .subspan(penalty_offsets[row], penalty_offsets[row + 1] - penalty_offsets[row]);
}

absl::Span<const int32_t> SamplingBatchHost::suppressed(int row) const {
  return absl::MakeConstSpan(suppress_ids)
      .subspan(suppress_offsets[row], suppress_offsets[row + 1] - suppress_offsets[row]);
}

absl::Span<const int32_t> SamplingBatchHost::adjusted_ids(int row) const {
  return absl::MakeConstSpan(adjust_ids)
      .subspan(adjust_offsets[row], adjust_offsets[row + 1] - adjust_offsets[row]);
}

absl::Span<const float> SamplingBatchHost::adjustments(int row) const {
  return absl::MakeConstSpan(adjust_values)
      .subspan(adjust_offsets[row], adjust_offsets[row + 1] - adjust_offsets[row]);
}

int SamplingBatchHost::max_top_logprobs() const {
  int most = 0;
  for (const RowSamplingParams& r : rows) most = std::max(most, r.top_logprobs);
  return most;
}

bool SamplingBatchHost::any_logprobs() const {
  return std::any_of(rows.begin(), rows.end(), [](const RowSamplingParams& r) {
    return r.logprobs || r.top_logprobs > 0;
  });
}

absl::Status ValidateSamplingBatch(const SamplingBatchHost& batch, int64_t rows, int64_t vocab) {
  if (batch.num_rows() != rows) {
    return absl::InvalidArgumentError(absl::StrCat("SampleRows: ", batch.num_rows(),
                                                   " sampling rows for ", rows, " logits rows"));
  }
  for (const RowSamplingParams& r : batch.rows) {
    if (!std::isfinite(r.temperature) || !std::isfinite(r.top_p) ||
        !std::isfinite(r.repetition_penalty) || r.repetition_penalty <= 0.0f || r.top_k < 0 ||
        r.top_logprobs < 0) {
      return absl::InvalidArgumentError("SampleRows: malformed row sampling parameters");
    }
    if (r.top_logprobs > kMaxSampledTopLogprobs) {
      return absl::InvalidArgumentError(absl::StrCat("SampleRows: top_logprobs ", r.top_logprobs,
                                                     " exceeds ", kMaxSampledTopLogprobs));
    }
  }
  if (absl::Status s = CheckList(batch.penalty_offsets, batch.penalty_ids, rows, vocab, "penalty");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckList(batch.suppress_offsets, batch.suppress_ids, rows, vocab, "suppressed");
      !s.ok()) {
    return s;
  }
  if (batch.adjust_values.size() != batch.adjust_ids.size()) {
    return absl::InvalidArgumentError("SampleRows: adjusted ids and values differ in number");
  }
  for (float v : batch.adjust_values) {
    if (!std::isfinite(v)) return absl::InvalidArgumentError("SampleRows: adjustment not finite");
  }
  return CheckList(batch.adjust_offsets, batch.adjust_ids, rows, vocab, "adjusted");
}

}  // namespace glm4v
