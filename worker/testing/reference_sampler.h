// The sampler as first written (copy, full exp, partial sorts of the whole vocabulary): the
// specification the fast worker/sampler.h is tested against, token for token.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "worker/sampler.h"
#include "worker/sampling_params.h"

namespace glm4v::worker::testing {

class ReferenceSampler {
 public:
  // Always fills the chosen token's logprob (has_logprob) and params.top_logprobs alternatives.
  SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                      const absl::flat_hash_set<int32_t>& seen_tokens,
                      absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                      uint64_t step);

 private:
  void SortTopCandidates(int count);

  std::vector<float> processed_;
  std::vector<float> weights_;
  std::vector<int32_t> order_;
};

}  // namespace glm4v::worker::testing
