// A step's sampling from the engine's side: the same per-sequence settings drive the host
// sampler (worker/sampler.h, rows sampled in parallel) and the device one
// (ModelRunner::ExecuteAndSample, kernels/sampling_batch.h).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "kernels/sampling_batch.h"
#include "worker/sampler.h"
#include "worker/sequence.h"

namespace glm4v::worker {

// Index of the token `seq` generates next (keys its draw with its seed).
inline int NextStepIndex(const Sequence& seq) { return static_cast<int>(seq.output_ids.size()); }

// Stop ids are suppressed until min_tokens tokens were generated.
absl::Span<const int32_t> SuppressedIds(const Sequence& seq);

// The additive logit adjustments of `seq`'s next token, by ascending id: logit_bias plus
// -(c * frequency_penalty + presence_penalty) for each id generated c > 0 times.
void AdditiveAdjustments(const Sequence& seq, std::vector<int32_t>* ids,
                         std::vector<float>* values);

// Appends `seq`'s next-token row: its params, (seed, step), seen ids when the repetition
// penalty is on, the suppressed ids.
void AddSamplingRow(const Sequence& seq, SamplingBatchHost* batch);

// Row `row` of a device-sampled step as the host sampler would report it.
SampledToken TokenFromSampledRow(const SampledRows& rows, int row,
                                 const RowSamplingParams& params);

// The host path: samples `seq`'s next token from its logits row (scratch).
SampledToken SampleOnHost(Sampler* sampler, absl::Span<float> logits, const Sequence& seq);

}  // namespace glm4v::worker
