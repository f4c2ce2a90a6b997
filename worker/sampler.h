// Turns one row of logits into a token: repetition penalty, suppressed ids, temperature, top-k,
// top-p, then greedy argmax or a draw from the counter-based RNG keyed by (seed, step).
//
// Bounded by reading the row once at real vocabularies (151,552): greedy is one argmax pass (no
// exp); otherwise one pass in L1-sized chunks takes the maxima of 64-id blocks and, only when a
// draw or logprobs need it, the normalizer. Top-k reads only the k blocks with the largest
// maxima and sorts only their candidates, never the vocabulary; top-p starts from the best 64
// then the best 1,024, then lowers a threshold until the candidates hold the nucleus. The tokens are those of the first implementation (worker/testing/
// reference_sampler.h) for the same logits, params, seed and step, except where a draw lands
// within ~1e-6 of a boundary between two tokens: the normalizer (and a draw from the whole
// distribution) use a vectorized exp within 2 ulp of std::exp, of row * (1 / T) rather than
// row / T, summed in another order.
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
  // temperature; before top-k/top-p truncation, so alternatives keep finite values). Only
  // computed when params.logprobs or params.top_logprobs ask for it (has_logprob).
  float logprob = 0.0f;
  bool has_logprob = false;
  std::vector<TokenLogprob> top_logprobs;  // params.top_logprobs most likely, best first
};

// Holds scratch buffers; one instance per thread. Sampling is a pure function of the
// arguments: the same inputs always give the same token.
class Sampler {
 public:
  // `seen_tokens`: ids in the prompt and output so far (repetition penalty).
  // `suppressed_tokens`: ids that must not be produced this step (e.g. stop ids before
  // min_tokens). `seed` and `step` (index of the token being generated) key the random draw.
  // The row is the sampler's scratch: the penalty and suppression are applied to it in place
  // (the temperature is not: processed = row / temperature where needed).
  SampledToken SampleInPlace(absl::Span<float> logits, const SamplingParams& params,
                             const absl::flat_hash_set<int32_t>& seen_tokens,
                             absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                             uint64_t step);

  // The same on a copy of `logits`.
  SampledToken Sample(absl::Span<const float> logits, const SamplingParams& params,
                      const absl::flat_hash_set<int32_t>& seen_tokens,
                      absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                      uint64_t step);

 private:
  struct ScanResult {
    float max = 0.0f;     // largest processed logit
    double total = 0.0;   // sum of exp(processed - max), when asked for
  };
  // One pass over the row in L1-sized chunks: the block maxima (block_max_), the processed max
  // and, when `need_total`, the normalizer.
  ScanResult Scan(const float* row, int vocab, float divisor, bool need_total);
  // candidates_ = the `count` best ids (processed value, then lower id), best first. Needs
  // block_max_ of this row: only blocks whose max reaches the count-th largest block max are
  // read; a count above half the blocks streams the row with a running threshold instead.
  void SelectTop(const float* row, int vocab, float divisor, int count);
  void StreamTop(const float* row, int vocab, float divisor, int count);
  // After the best candidates ran out short of `mass` (of exp(processed - max)): candidates_ =
  // every id at or above a threshold lowered below the current worst until they hold it,
  // best first.
  void CollectNucleus(const float* row, int vocab, float divisor, float max, double mass);
  // keys_[i] = the best-first key of candidates_[i] for i < count.
  void BuildKeys(const float* row, float divisor, int count);
  // candidates_ = the ids >= raw_threshold of the blocks whose max reaches it (unordered);
  // returns how many.
  int CollectFromBlocks(const float* row, int vocab, float raw_threshold);
  // Sorts candidates_[0, count) best first by processed value then id, keeping `keep`.
  void SortCandidates(const float* row, float divisor, int count, int keep);
  // The id where the running sum of exp(processed - max) in id order passes `target`.
  int32_t DrawInIdOrder(const float* row, int vocab, float divisor, float max, double target);

  std::vector<float> copy_;
  std::vector<int32_t> candidates_;
  std::vector<uint64_t> keys_;
  std::vector<float> block_weights_;
  std::vector<float> block_max_;
  std::vector<float> block_order_;
};

}  // namespace glm4v::worker
