#include "worker/step_sampling.h"

#include <vector>

namespace glm4v::worker {

absl::Span<const int32_t> SuppressedIds(const Sequence& seq) {
  if (NextStepIndex(seq) < seq.params.min_tokens) return seq.params.stop_token_ids;
  return {};
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
  batch->AddRow(row, seen, SuppressedIds(seq));
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
  return sampler->SampleInPlace(logits, seq.params, seq.seen_tokens, SuppressedIds(seq), seq.seed,
                                static_cast<uint64_t>(NextStepIndex(seq)));
}

}  // namespace glm4v::worker
