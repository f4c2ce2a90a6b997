#include "worker/testing/reference_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/counter_rng.h"

namespace glm4v::worker::testing {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Candidate prefixes tried when top-p needs the tokens in descending order without a top-k.
constexpr int kInitialTopPCandidates = 64;

}  // namespace

void ReferenceSampler::SortTopCandidates(int count) {
  const int vocab = static_cast<int>(processed_.size());
  order_.resize(vocab);
  std::iota(order_.begin(), order_.end(), 0);
  auto better = [this](int32_t a, int32_t b) {
    if (processed_[a] != processed_[b]) return processed_[a] > processed_[b];
    return a < b;
  };
  if (count < vocab) {
    std::nth_element(order_.begin(), order_.begin() + count, order_.end(), better);
    order_.resize(count);
  }
  std::sort(order_.begin(), order_.end(), better);
}

SampledToken ReferenceSampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                             const absl::flat_hash_set<int32_t>& seen_tokens,
                             absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                             uint64_t step) {
  const int vocab = static_cast<int>(logits.size());
  processed_.assign(logits.begin(), logits.end());

  if (params.repetition_penalty != 1.0f) {
    const float penalty = params.repetition_penalty;
    for (int32_t id : seen_tokens) {
      if (id < 0 || id >= vocab) continue;
      float& logit = processed_[id];
      logit = logit > 0.0f ? logit / penalty : logit * penalty;
    }
  }
  for (int32_t id : suppressed_tokens) {
    if (id >= 0 && id < vocab) processed_[id] = kNegInf;
  }
  const bool greedy = params.greedy();
  if (!greedy && params.temperature != 1.0f) {
    for (float& logit : processed_) logit /= params.temperature;
  }

  // Softmax normalizer; weights are shared by the logprobs and the draw.
  int32_t argmax = 0;
  for (int i = 1; i < vocab; ++i) {
    if (processed_[i] > processed_[argmax]) argmax = i;
  }
  const float max_logit = processed_[argmax];
  weights_.resize(vocab);
  double total_weight = 0.0;
  for (int i = 0; i < vocab; ++i) {
    weights_[i] = max_logit == kNegInf ? 0.0f : std::exp(processed_[i] - max_logit);
    total_weight += weights_[i];
  }
  const double log_z = max_logit + std::log(total_weight);

  SampledToken result;
  if (greedy || max_logit == kNegInf) {
    result.token_id = argmax;
  } else {
    const bool use_top_k = params.top_k > 0 && params.top_k < vocab;
    const bool use_top_p = params.top_p < 1.0f;
    const double u = CounterUniform(seed, step);
    if (!use_top_k && !use_top_p) {
      // Full distribution, walked in id order.
      const double target = u * total_weight;
      double cumulative = 0.0;
      int32_t chosen = argmax;
      for (int i = 0; i < vocab; ++i) {
        if (weights_[i] == 0.0f) continue;
        cumulative += weights_[i];
        chosen = i;
        if (target < cumulative) break;
      }
      result.token_id = chosen;
    } else {
      // Candidates in descending order: the top-k set, or for top-p alone a prefix long
      // enough to hold top_p of the mass.
      double candidate_weight = 0.0;
      if (use_top_k) {
        SortTopCandidates(params.top_k);
        for (int32_t id : order_) candidate_weight += weights_[id];
      } else {
        int count = std::min(vocab, kInitialTopPCandidates);
        while (true) {
          SortTopCandidates(count);
          double mass = 0.0;
          for (int32_t id : order_) mass += weights_[id];
          if (count == vocab || mass >= params.top_p * total_weight) break;
          count = std::min(vocab, count * 4);
        }
        candidate_weight = total_weight;  // top-p is relative to the whole distribution
      }
      // Top-p keeps each candidate whose preceding mass is below top_p (at least one).
      size_t kept = order_.size();
      double kept_weight = 0.0;
      if (use_top_p) {
        const double limit = params.top_p * candidate_weight;
        double before = 0.0;
        kept = 0;
        while (kept < order_.size() && (kept == 0 || before < limit)) {
          before += weights_[order_[kept]];
          ++kept;
        }
        kept_weight = before;
      } else {
        kept_weight = candidate_weight;
      }
      const double target = u * kept_weight;
      double cumulative = 0.0;
      int32_t chosen = order_[0];
      for (size_t i = 0; i < kept; ++i) {
        const int32_t id = order_[i];
        if (weights_[id] == 0.0f) continue;
        cumulative += weights_[id];
        chosen = id;
        if (target < cumulative) break;
      }
      result.token_id = chosen;
    }
  }
  result.logprob = static_cast<float>(processed_[result.token_id] - log_z);
  result.has_logprob = true;

  if (params.top_logprobs > 0) {
    SortTopCandidates(std::min(params.top_logprobs, vocab));
    result.top_logprobs.reserve(order_.size());
    for (int32_t id : order_) {
      result.top_logprobs.push_back({id, static_cast<float>(processed_[id] - log_z)});
    }
  }
  return result;
}

}  // namespace glm4v::worker::testing
