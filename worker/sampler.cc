#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/row_kernels.h"
#include "common/counter_rng.h"

namespace glm4v::worker {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// 16 KiB: a chunk stays in L1 between its max, collect and exp passes.
constexpr int kScanChunk = 4096;
// Top-p alone first tries the best 64 candidates, then the best 1,024; a larger nucleus is
// collected by a threshold lowered 0.5, 1, 2... below the 1,024th best until it holds the mass.
constexpr int kTopPProbe = 64;
constexpr int kTopPSecondProbe = 1024;
// A collected nucleus larger than this is halved while the better half holds the mass.
constexpr int kNucleusSortAbove = 2048;
constexpr int kDrawBlock = 2048;

// A key whose ascending order is descending value, then ascending id.
inline uint64_t BestFirstKey(float value, int32_t id) {
  if (value == 0.0f) value = 0.0f;  // -0 and +0 are equal: the lower id goes first
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  // Order-preserving map of floats onto unsigned integers, then inverted for descending.
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(~bits) << 32) | static_cast<uint32_t>(id);
}

inline int32_t KeyId(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

// The smallest raw logit whose processed value (raw / divisor, IEEE-rounded) is >= `processed`:
// a threshold on processed values applied to the raw row (division by T > 0 is monotone).
float RawThreshold(float processed, float divisor) {
  if (divisor == 1.0f || !std::isfinite(processed)) return processed;
  float raw = processed * divisor;
  while (raw / divisor < processed) raw = std::nextafter(raw, kPosInf);
  for (float lower = std::nextafter(raw, kNegInf); lower / divisor >= processed;
       lower = std::nextafter(raw, kNegInf)) {
    raw = lower;
  }
  return raw;
}

}  // namespace

void Sampler::BuildKeys(const float* row, float divisor, int count) {
  keys_.resize(count);
  for (int i = 0; i < count; ++i) {
    keys_[i] = BestFirstKey(row[candidates_[i]] / divisor, candidates_[i]);
  }
}

int Sampler::CollectFromBlocks(const float* row, int vocab, float raw_threshold) {
  int selected = 0;
  for (float m : block_max_) selected += m >= raw_threshold;
  candidates_.resize(static_cast<size_t>(selected) * cpu::kMaxBlock + cpu::kCollectSlack);
  int size = 0;
  for (int b = 0; b < static_cast<int>(block_max_.size()); ++b) {
    if (block_max_[b] < raw_threshold) continue;
    const int begin = b * cpu::kMaxBlock;
    size += static_cast<int>(cpu::CollectAtLeast(row, begin, std::min(vocab, begin + cpu::kMaxBlock),
                                                 raw_threshold, candidates_.data() + size));
  }
  return size;
}

void Sampler::SortCandidates(const float* row, float divisor, int count, int keep) {
  BuildKeys(row, divisor, count);
  if (keep < count) {
    std::nth_element(keys_.begin(), keys_.begin() + keep, keys_.end());
    keys_.resize(keep);
  }
  std::sort(keys_.begin(), keys_.end());
  candidates_.resize(keys_.size());
  for (size_t i = 0; i < keys_.size(); ++i) candidates_[i] = KeyId(keys_[i]);
}

Sampler::ScanResult Sampler::Scan(const float* row, int vocab, float divisor, bool need_total) {
  const float scale = 1.0f / divisor;  // for the normalizer's exp only
  block_max_.resize((vocab + cpu::kMaxBlock - 1) / cpu::kMaxBlock);
  ScanResult result;
  result.max = kNegInf;
  for (int begin = 0; begin < vocab; begin += kScanChunk) {
    const int len = std::min(kScanChunk, vocab - begin);
    const float chunk_max =
        cpu::BlockMaxRow(row + begin, len, block_max_.data() + begin / cpu::kMaxBlock) / divisor;
    // (exact: rounding division is monotone, so max(raw) / T is the processed max)
    if (need_total) {
      // Normalizer against a running max, rescaled when a chunk raises it.
      if (chunk_max > result.max) {
        if (result.total > 0.0) {
          result.total *= std::exp(static_cast<double>(result.max) - chunk_max);
        }
        result.max = chunk_max;
      }
      if (result.max > kNegInf) result.total += cpu::SumExpRow(row + begin, len, scale, result.max);
    } else if (chunk_max > result.max) {
      result.max = chunk_max;
    }
  }
  return result;
}

void Sampler::SelectTop(const float* row, int vocab, float divisor, int count) {
  count = std::min(count, vocab);
  const int num_blocks = static_cast<int>(block_max_.size());
  if (count <= 0) {
    candidates_.clear();
    return;
  }
  if (2 * count > num_blocks) {
    StreamTop(row, vocab, divisor, count);
    return;
  }
  // At least `count` ids are >= the count-th largest block max, so the best `count` are too.
  block_order_.assign(block_max_.begin(), block_max_.end());
  std::nth_element(block_order_.begin(), block_order_.begin() + (count - 1), block_order_.end(),
                   [](float a, float b) { return a > b; });
  const float raw_threshold = RawThreshold(block_order_[count - 1] / divisor, divisor);
  const int size = CollectFromBlocks(row, vocab, raw_threshold);
  SortCandidates(row, divisor, size, std::min(size, count));
}

void Sampler::StreamTop(const float* row, int vocab, float divisor, int count) {
  // Ids at or above the running count-th best value are kept; past a chunk's worth the set is
  // cut back to `count` and the threshold raised.
  const int shrink_above = count + kScanChunk / 2;
  candidates_.resize(static_cast<size_t>(shrink_above) + kScanChunk + cpu::kCollectSlack);
  float raw_threshold = kNegInf;
  int size = 0;
  for (int begin = 0; begin < vocab; begin += kScanChunk) {
    const int end = std::min(vocab, begin + kScanChunk);
    size += static_cast<int>(
        cpu::CollectAtLeast(row, begin, end, raw_threshold, candidates_.data() + size));
    if (size <= shrink_above) continue;
    BuildKeys(row, divisor, size);
    std::nth_element(keys_.begin(), keys_.begin() + (count - 1), keys_.begin() + size);
    // Later ids are larger, so a tie with the count-th best loses: only strictly better passes.
    const float kth = row[KeyId(keys_[count - 1])] / divisor;
    raw_threshold = RawThreshold(std::nextafter(kth, kPosInf), divisor);
    for (int i = 0; i < count; ++i) candidates_[i] = KeyId(keys_[i]);
    size = count;
  }
  SortCandidates(row, divisor, size, std::min(size, count));
}

void Sampler::CollectNucleus(const float* row, int vocab, float divisor, float max,
                             double mass) {
  const float worst = row[candidates_.back()] / divisor;
  int size = 0;
  for (float step = 0.5f;; step *= 2.0f) {
    const float threshold = worst - step;
    // Below max - 110 every weight underflows to 0: take every id.
    const bool everything = threshold < max - 110.0f;
    size = CollectFromBlocks(row, vocab, everything ? kNegInf : RawThreshold(threshold, divisor));
    if (everything) break;
    double collected = 0.0;
    for (int i = 0; i < size; ++i) collected += std::exp(row[candidates_[i]] / divisor - max);
    // The walk sums the same weights in another order: keep a margin over rounding.
    if (collected >= mass * (1.0 + 1e-9)) break;
  }
  // Halve a large set while its better half still holds the mass: the nucleus lies in it.
  while (size > kNucleusSortAbove) {
    const int half = size / 2;
    BuildKeys(row, divisor, size);
    std::nth_element(keys_.begin(), keys_.begin() + half, keys_.end());
    double half_mass = 0.0;
    for (int i = 0; i < half; ++i) half_mass += std::exp(row[KeyId(keys_[i])] / divisor - max);
    if (!(half_mass >= mass * (1.0 + 1e-9))) break;  // (a NaN mass keeps everything)
    for (int i = 0; i < half; ++i) candidates_[i] = KeyId(keys_[i]);
    size = half;
  }
  SortCandidates(row, divisor, size, size);
}

int32_t Sampler::DrawInIdOrder(const float* row, int vocab, float divisor, float max,
                               double target) {
  // Whole blocks are skipped by their sum; the block holding the target is walked id by id
  // with the same exp, as a running sum over the row would.
  const float scale = 1.0f / divisor;
  block_weights_.resize(kDrawBlock);
  double cumulative = 0.0;
  int32_t chosen = -1;
  for (int begin = 0; begin < vocab; begin += kDrawBlock) {
    const int len = std::min(kDrawBlock, vocab - begin);
    const double block = cpu::SumExpRow(row + begin, len, scale, max);
    if (block == 0.0) continue;
    if (target >= cumulative + block) {
      cumulative += block;
      continue;
    }
    cpu::ExpRow(row + begin, len, scale, max, block_weights_.data());
    for (int i = 0; i < len; ++i) {
      if (block_weights_[i] == 0.0f) continue;
      cumulative += block_weights_[i];
      chosen = begin + i;
      if (target < cumulative) return chosen;
    }
  }
  if (chosen >= 0) return chosen;
  // Rounding put the target past the total: the last id with weight, as the running sum does.
  for (int i = vocab - 1; i >= 0; --i) {
    if (std::exp(row[i] / divisor - max) != 0.0f) return i;
  }
  return static_cast<int32_t>(cpu::ArgmaxRow(row, vocab));
}

SampledToken Sampler::Sample(absl::Span<const float> logits, const SamplingParams& params,
                             const absl::flat_hash_set<int32_t>& seen_tokens,
                             absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                             uint64_t step) {
  copy_.assign(logits.begin(), logits.end());
  return SampleInPlace(absl::MakeSpan(copy_), params, seen_tokens, suppressed_tokens, seed, step);
}

SampledToken Sampler::SampleInPlace(absl::Span<float> logits, const SamplingParams& params,
                                    const absl::flat_hash_set<int32_t>& seen_tokens,
                                    absl::Span<const int32_t> suppressed_tokens, uint64_t seed,
                                    uint64_t step) {
  SampledToken result;
  const int vocab = static_cast<int>(logits.size());
  if (vocab == 0) return result;
  float* row = logits.data();

  // Sparse edits first: the penalty over the seen ids, then the suppressed ids.
  if (params.repetition_penalty != 1.0f) {
    const float penalty = params.repetition_penalty;
    for (int32_t id : seen_tokens) {
      if (id < 0 || id >= vocab) continue;
      float& logit = row[id];
      logit = logit > 0.0f ? logit / penalty : logit * penalty;
    }
  }
  for (int32_t id : suppressed_tokens) {
    if (id >= 0 && id < vocab) row[id] = kNegInf;
  }

  const bool greedy = params.greedy();
  const bool want_logprobs = params.logprobs || params.top_logprobs > 0;
  // Processed logit = row / divisor, rounded as the division rounds; computed where needed.
  const float divisor = !greedy && params.temperature != 1.0f ? params.temperature : 1.0f;
  auto processed = [&](int32_t id) { return row[id] / divisor; };
  float max = kNegInf;
  double total_weight = 0.0;
  // True when candidates_ holds a best-first prefix of the row (reusable for top logprobs).
  bool candidates_are_prefix = false;
  bool have_blocks = false;  // block_max_ is this row's

  if (greedy) {
    result.token_id = static_cast<int32_t>(cpu::ArgmaxRow(row, vocab));
    max = row[result.token_id];
    if (want_logprobs && max > kNegInf) total_weight = cpu::SumExpRow(row, vocab, 1.0f, max);
  } else {
    const bool use_top_k = params.top_k > 0 && params.top_k < vocab;
    const bool use_top_p = params.top_p < 1.0f;
    // Top-p alone is relative to the whole distribution, as is a draw from all of it.
    const bool need_total = want_logprobs || !use_top_k;
    const ScanResult scan = Scan(row, vocab, divisor, need_total);
    have_blocks = true;
    if (use_top_k || use_top_p) SelectTop(row, vocab, divisor, use_top_k ? params.top_k : kTopPProbe);
    max = scan.max;
    total_weight = scan.total;
    auto weight = [&](int32_t id) { return std::exp(processed(id) - max); };

    if (max == kNegInf) {
      result.token_id = static_cast<int32_t>(cpu::ArgmaxRow(row, vocab));
    } else if (!use_top_k && !use_top_p) {
      // Full distribution, walked in id order.
      result.token_id = DrawInIdOrder(row, vocab, divisor, max,
                                      CounterUniform(seed, step) * total_weight);
    } else {
      candidates_are_prefix = true;
      double candidate_weight = total_weight;
      if (use_top_k) {
        candidate_weight = 0.0;
        for (int32_t id : candidates_) candidate_weight += weight(id);
      }
      // Top-p keeps each candidate whose preceding mass is below top_p (at least one).
      size_t kept = candidates_.size();
      double kept_weight = candidate_weight;
      if (use_top_p) {
        const double limit = params.top_p * candidate_weight;
        bool widened_fully = false;
        while (true) {
          double before = 0.0;
          kept = 0;
          while (kept < candidates_.size() && (kept == 0 || before < limit)) {
            before += weight(candidates_[kept]);
            ++kept;
          }
          kept_weight = before;
          // The candidates ran out before reaching the mass: widen them (top-p alone only).
          // (widened_fully: the collected nucleus is final even where rounding or NaN logits
          // leave its mass short of the limit.)
          if (use_top_k || before >= limit || widened_fully ||
              static_cast<int>(candidates_.size()) >= vocab) {
            break;
          }
          if (static_cast<int>(candidates_.size()) < kTopPSecondProbe) {
            SelectTop(row, vocab, divisor, kTopPSecondProbe);
          } else {
            CollectNucleus(row, vocab, divisor, max, limit);
            widened_fully = true;
          }
        }
      }
      const double target = CounterUniform(seed, step) * kept_weight;
      double cumulative = 0.0;
      int32_t chosen = candidates_[0];
      for (size_t i = 0; i < kept; ++i) {
        const int32_t id = candidates_[i];
        const float w = weight(id);
        if (w == 0.0f) continue;
        cumulative += w;
        chosen = id;
        if (target < cumulative) break;
      }
      result.token_id = chosen;
    }
  }

  if (!want_logprobs) return result;
  const double log_z = max + std::log(total_weight);
  result.logprob = static_cast<float>(processed(result.token_id) - log_z);
  result.has_logprob = true;
  if (params.top_logprobs > 0) {
    const int count = std::min(params.top_logprobs, vocab);
    if (!candidates_are_prefix || static_cast<int>(candidates_.size()) < count) {
      if (!have_blocks) Scan(row, vocab, divisor, false);
      SelectTop(row, vocab, divisor, count);
    }
    const int reported = std::min(count, static_cast<int>(candidates_.size()));  // NaN rows
    result.top_logprobs.reserve(reported);
    for (int i = 0; i < reported; ++i) {
      const int32_t id = candidates_[i];
      result.top_logprobs.push_back({id, static_cast<float>(processed(id) - log_z)});
    }
  }
  return result;
}

}  // namespace glm4v::worker
