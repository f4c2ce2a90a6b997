// Turns one row of logits into a token: repetition penalty, suppressed ids, temperature, top-k,
// top-p, then greedy argmax or a draw from the counter-based RNG keyed by (seed, step).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "worker/sampling_params.h"

namespace glm4v::worker {

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token_id = -1;
  // Log-softmax of the processed logits (after the repetition penalty, suppression and
  // temperature; before top-k/top-p truncation, so alternatives keep finite values).
  float logprob = 0.0f;
  std::vector<TokenLogprob> top_logprobs;  // params.top_logprobs most likely, best first
};

// Holds scratch buffers; one instance per thread. Sample() is a pure function of its
// arguments: the same inputs always give the same token.
class Sampler {
 public:
  // `seen_tokens`: ids in the prompt and output so far (repetition penalty).
  // `suppressed_tokens`: ids that must not be produced this step (e.g. stop ids before
  // min_tokens). `seed` and `step` (index of the token being generated) key the random draw.
  SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                      const absl::flat_hash_set<int32_t>& seen_tokens,
                      absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                      uint64_t step);

 private:
  // Fills order_ with the `count` largest processed logits, best first (ties: lower id first).
  void SortTopCandidates(int count);

  std::vector<float> processed_;  // logits after penalty, suppression and temperature
  std::vector<float> weights_;    // exp(processed - max)
  std::vector<int32_t> order_;
};

}  // namespace glm4v::worker
