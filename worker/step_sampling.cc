#include "worker/step_sampling.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace glm4v::worker {

absl::Span<const int32_t> SuppressedIds(const Sequence& seq) {
  if (NextStepIndex(seq) < seq.params.min_tokens) return seq.params.stop_token_ids;
  return {};
}

void AdditiveAdjustments(const Sequence& seq, std::vector<int32_t>* ids,
                         std::vector<float>* values) {
  ids->clear();
  values->clear();
  const SamplingParams& p = seq.params;
  if (!p.has_additive_adjustments()) return;
  std::vector<std::pair<int32_t, float>> deltas(p.logit_bias.begin(), p.logit_bias.end());
  for (const auto& [id, count] : seq.output_counts) {
    deltas.emplace_back(id, -(static_cast<float>(count) * p.frequency_penalty +
                              p.presence_penalty));
  }
  // Sorted by id, then the bias and the penalty of one id summed (bias first).
  std::stable_sort(deltas.begin(), deltas.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [id, delta] : deltas) {
    if (!ids->empty() && ids->back() == id) {
      values->back() += delta;
    } else {
      ids->push_back(id);
      values->push_back(delta);
    }
  }
}

void AddSamplingRow(const Sequence& seq, SamplingBatchHost* batch) {
  const SamplingParams& p = seq.params;
  RowSamplingParams row;
  row.temperature = p.temperature;
  row.top_k = p.top_k;
  row.top_p = p.top_p;
  row.repetition_penalty = p.repetition_penalty;
  row.seed = seq.seed;
  row.step = static_cast<uint64_t>(NextStepIndex(seq));
  row.logprobs = p.logprobs || p.top_logprobs > 0;
  row.top_logprobs = p.top_logprobs;
  std::vector<int32_t> seen;
  if (p.repetition_penalty != 1.0f) seen.assign(seq.seen_tokens.begin(), seq.seen_tokens.end());
  std::vector<int32_t> adjust_ids;
  std::vector<float> adjust_values;
  AdditiveAdjustments(seq, &adjust_ids, &adjust_values);
  batch->AddRow(row, seen, SuppressedIds(seq), adjust_ids, adjust_values);
}

SampledToken TokenFromSampledRow(const SampledRows& rows, int row,
                                 const RowSamplingParams& params) {
  SampledToken token;
  token.token_id = rows.token_ids[row];
  if (!params.logprobs && params.top_logprobs == 0) return token;
  token.has_logprob = true;
  token.logprob = rows.logprobs[row];
  for (int k = 0; k < params.top_logprobs && k < rows.top_count; ++k) {
    const int32_t id = rows.top_ids[static_cast<size_t>(row) * rows.top_count + k];
    if (id < 0) break;
    token.top_logprobs.push_back({id, rows.top_logprobs[static_cast<size_t>(row) * rows.top_count + k]});
  }
  return token;
}

SampledToken SampleOnHost(Sampler* sampler, absl::Span<float> logits, const Sequence& seq) {
  if (seq.params.has_additive_adjustments()) {
    std::vector<int32_t> ids;
    std::vector<float> values;
    AdditiveAdjustments(seq, &ids, &values);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= 0 && ids[i] < static_cast<int32_t>(logits.size())) logits[ids[i]] += values[i];
    }
  }
  return sampler->SampleInPlace(logits, seq.params, seq.seen_tokens, SuppressedIds(seq), seq.seed,
                                static_cast<uint64_t>(NextStepIndex(seq)));
}

}  // namespace glm4v::worker
