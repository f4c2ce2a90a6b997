#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/simd_level_testing.h"
#include "worker/testing/reference_sampler.h"
#include "worker/testing/synthetic_logits.h"

namespace glm4v::worker {
namespace {

const absl::flat_hash_set<int32_t> kNoneSeen;

std::vector<double> Softmax(const std::vector<double>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp(logits[i] - max);
  for (double& v : p) v /= sum;
  return p;
}

// Frequencies of `draws` samples (steps 0..draws-1 of one seed).
std::vector<int> Histogram(const std::vector<float>& logits, const SamplingParams& params,
                           int draws, uint64_t seed,
                           const absl::flat_hash_set<int32_t>& seen = kNoneSeen) {
  Sampler sampler;
  std::vector<int> counts(logits.size(), 0);
  for (int step = 0; step < draws; ++step) {
    ++counts[sampler.Sample(logits, params, seen, {}, seed, step).token_id];
  }
  return counts;
}

// Pearson chi-square over the categories with expected probability > 0; any draw of a
// zero-probability category makes it infinite.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& expected_p) {
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected_p[i] == 0) {
      if (counts[i] > 0) return INFINITY;
      continue;
    }
    const double e = n * expected_p[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

// Upper 0.1% points of the chi-square distribution, by degrees of freedom.
double ChiSquareCritical999(int dof) {
  static const double kTable[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12};
  return kTable[dof];
}

const std::vector<float> kLogits = {1.0f, 2.5f, 0.3f, -1.0f, 2.0f, 0.0f, 1.7f, -0.5f};
constexpr int kDraws = 40000;

TEST(SamplerTest, GreedyTakesArgmaxLowestIdOnTies) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0;
  EXPECT_EQ(sampler.Sample(kLogits, params, kNoneSeen, {}, 1, 0).token_id, 1);
  std::vector<float> tied = {0.5f, 3.0f, 3.0f, 1.0f};
  EXPECT_EQ(sampler.Sample(tied, params, kNoneSeen, {}, 1, 0).token_id, 1);
  // top_k = 1 is greedy whatever the temperature.
  params.temperature = 5;
  params.top_k = 1;
  for (int step = 0; step < 50; ++step) {
    EXPECT_EQ(sampler.Sample(kLogits, params, kNoneSeen, {}, 7, step).token_id, 1);
  }
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0;
  params.repetition_penalty = 1.5f;
  params.top_logprobs = 4;
  std::vector<float> logits = {3.0f, 2.5f, -0.2f, -0.1f};
  absl::flat_hash_set<int32_t> seen = {0, 3};
  SampledToken token = sampler.Sample(logits, params, seen, {}, 1, 0);
  // Processed: {2.0, 2.5, -0.2, -0.15}.
  EXPECT_EQ(token.token_id, 1);
  std::vector<double> p = Softmax({2.0, 2.5, -0.2, -0.15});
  ASSERT_EQ(token.top_logprobs.size(), 4u);
  EXPECT_EQ(token.top_logprobs[0].token_id, 1);
  EXPECT_EQ(token.top_logprobs[1].token_id, 0);
  EXPECT_EQ(token.top_logprobs[2].token_id, 3);  // -0.15 > -0.2: the penalty was a multiply
  EXPECT_EQ(token.top_logprobs[3].token_id, 2);
  EXPECT_NEAR(token.logprob, std::log(p[1]), 1e-5);
  EXPECT_NEAR(token.top_logprobs[1].logprob, std::log(p[0]), 1e-5);
  EXPECT_NEAR(token.top_logprobs[2].logprob, std::log(p[3]), 1e-5);
}

TEST(SamplerTest, SuppressedTokensAreNeverProduced) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0;
  std::vector<int32_t> suppressed = {1, 4};
  EXPECT_EQ(sampler.Sample(kLogits, params, kNoneSeen, suppressed, 1, 0).token_id, 6);
  params.temperature = 1;
  for (int step = 0; step < 2000; ++step) {
    int32_t id = sampler.Sample(kLogits, params, kNoneSeen, suppressed, 3, step).token_id;
    EXPECT_NE(id, 1);
    EXPECT_NE(id, 4);
  }
}

TEST(SamplerTest, LogprobsAreLogSoftmaxOfTemperatureScaledLogits) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0.5f;
  params.top_logprobs = 3;
  SampledToken token = sampler.Sample(kLogits, params, kNoneSeen, {}, 11, 0);
  std::vector<double> scaled(kLogits.begin(), kLogits.end());
  for (double& v : scaled) v /= 0.5;
  std::vector<double> p = Softmax(scaled);
  EXPECT_NEAR(token.logprob, std::log(p[token.token_id]), 1e-5);
  ASSERT_EQ(token.top_logprobs.size(), 3u);
  EXPECT_EQ(token.top_logprobs[0].token_id, 1);
  EXPECT_EQ(token.top_logprobs[1].token_id, 4);
  EXPECT_EQ(token.top_logprobs[2].token_id, 6);
  EXPECT_NEAR(token.top_logprobs[0].logprob, std::log(p[1]), 1e-5);
}

TEST(SamplerTest, SameSeedAndStepGiveSameToken) {
  SamplingParams params;
  params.temperature = 1.3f;
  Sampler a, b;
  std::vector<int32_t> first, second, other_seed;
  for (int step = 0; step < 200; ++step) {
    first.push_back(a.Sample(kLogits, params, kNoneSeen, {}, 42, step).token_id);
    other_seed.push_back(a.Sample(kLogits, params, kNoneSeen, {}, 43, step).token_id);
  }
  // Different call order on another sampler: draws depend only on (seed, step).
  for (int step = 199; step >= 0; --step) {
    second.insert(second.begin(), b.Sample(kLogits, params, kNoneSeen, {}, 42, step).token_id);
  }
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other_seed);
}

TEST(SamplerTest, TemperatureMatchesSoftmaxDistribution) {
  SamplingParams params;
  params.temperature = 0.7f;
  std::vector<double> scaled(kLogits.begin(), kLogits.end());
  for (double& v : scaled) v /= 0.7;
  std::vector<int> counts = Histogram(kLogits, params, kDraws, 1234);
  EXPECT_LT(ChiSquare(counts, Softmax(scaled)), ChiSquareCritical999(7));
  // The same counts are far from the untempered distribution: the test has power.
  std::vector<double> raw(kLogits.begin(), kLogits.end());
  EXPECT_GT(ChiSquare(counts, Softmax(raw)), 10 * ChiSquareCritical999(7));
}

TEST(SamplerTest, TopKRenormalizesOverTheKBest) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 3;  // ids 1 (2.5), 4 (2.0), 6 (1.7)
  std::vector<double> p = Softmax({2.5, 2.0, 1.7});
  std::vector<double> expected(kLogits.size(), 0.0);
  expected[1] = p[0];
  expected[4] = p[1];
  expected[6] = p[2];
  std::vector<int> counts = Histogram(kLogits, params, kDraws, 99);
  EXPECT_LT(ChiSquare(counts, expected), ChiSquareCritical999(2));
  // A top-4 set would be rejected.
  std::vector<double> p4 = Softmax({2.5, 2.0, 1.7, 1.0});
  std::vector<double> wrong(kLogits.size(), 0.0);
  wrong[1] = p4[0];
  wrong[4] = p4[1];
  wrong[6] = p4[2];
  wrong[0] = p4[3];
  EXPECT_GT(ChiSquare(counts, wrong), 10 * ChiSquareCritical999(3));
}

// The nucleus: the shortest best-first prefix whose mass reaches top_p, renormalized.
std::vector<double> NucleusDistribution(const std::vector<double>& p, double top_p) {
  std::vector<int> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  // Ties: lower id first, as the sampler orders them.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
  std::vector<double> out(p.size(), 0.0);
  double mass = 0;
  for (int id : order) {
    if (mass >= top_p) break;
    out[id] = p[id];
    mass += p[id];
  }
  for (double& v : out) v /= mass;
  return out;
}

TEST(SamplerTest, TopPKeepsTheNucleus) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.85f;
  std::vector<double> raw(kLogits.begin(), kLogits.end());
  std::vector<double> expected = NucleusDistribution(Softmax(raw), 0.85);
  int support = 0;
  for (double v : expected) support += v > 0;
  ASSERT_EQ(support, 4);  // 1, 4, 6, 0: a meaningful cut, not everything
  std::vector<int> counts = Histogram(kLogits, params, kDraws, 5);
  EXPECT_LT(ChiSquare(counts, expected), ChiSquareCritical999(support - 1));
  // Sampling the full distribution instead would be caught.
  std::vector<double> full = Softmax(raw);
  EXPECT_EQ(ChiSquare(counts, full) < ChiSquareCritical999(7), false);
}

TEST(SamplerTest, TopPOverALargeVocabularyWidensItsCandidateSet) {
  // 5000 near-flat logits: the nucleus needs more than the first candidate batch.
  std::vector<float> logits(5000);
  for (int i = 0; i < 5000; ++i) logits[i] = 0.001f * static_cast<float>(i % 97);
  SamplingParams params;
  params.top_p = 0.9f;
  Sampler sampler;
  std::vector<double> raw(logits.begin(), logits.end());
  std::vector<double> nucleus = NucleusDistribution(Softmax(raw), 0.9);
  int distinct_outside = 0;
  absl::flat_hash_set<int32_t> produced;
  for (int step = 0; step < 1000; ++step) {
    int32_t id = sampler.Sample(logits, params, kNoneSeen, {}, 8, step).token_id;
    produced.insert(id);
    if (nucleus[id] == 0) ++distinct_outside;
  }
  EXPECT_EQ(distinct_outside, 0);
  EXPECT_GT(produced.size(), 500u);  // far beyond the first 64 candidates
}

TEST(SamplerTest, TopKThenTopPThenTemperatureCombine) {
  SamplingParams params;
  params.temperature = 1.6f;
  params.top_k = 5;
  params.top_p = 0.8f;
  // Top-5 of the scaled logits, renormalized, then the nucleus of that.
  std::vector<double> scaled(kLogits.begin(), kLogits.end());
  for (double& v : scaled) v /= 1.6;
  std::vector<int> order(kLogits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return scaled[a] > scaled[b]; });
  std::vector<double> top5(kLogits.size(), -INFINITY);
  for (int i = 0; i < 5; ++i) top5[order[i]] = scaled[order[i]];
  std::vector<double> expected = NucleusDistribution(Softmax(top5), 0.8);
  int support = 0;
  for (double v : expected) support += v > 0;
  ASSERT_GE(support, 3);
  ASSERT_LT(support, 5);
  std::vector<int> counts = Histogram(kLogits, params, kDraws, 2024);
  EXPECT_LT(ChiSquare(counts, expected), ChiSquareCritical999(support - 1));
}

TEST(SamplerTest, RepetitionPenaltyShapesTheSampledDistribution) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.repetition_penalty = 2.0f;
  absl::flat_hash_set<int32_t> seen = {1, 3};
  std::vector<double> processed(kLogits.begin(), kLogits.end());
  processed[1] /= 2.0;
  processed[3] *= 2.0;
  std::vector<int> counts = Histogram(kLogits, params, kDraws, 77, seen);
  EXPECT_LT(ChiSquare(counts, Softmax(processed)), ChiSquareCritical999(7));
}

// GLM-4's real vocabulary: the fast sampler must give the first implementation's tokens.
constexpr int kRealVocab = 151552;

std::vector<float> RealVocabRow(bool peaked, uint32_t seed) {
  return testing::SyntheticLogits(kRealVocab, peaked, seed);
}

struct Mix {
  std::string name;
  SamplingParams params;
};

std::vector<Mix> RealVocabMixes() {
  std::vector<Mix> mixes;
  auto add = [&](std::string name, float temperature, float top_p, int top_k, float penalty,
                 int top_logprobs, bool logprobs = false) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_p = top_p;
    p.top_k = top_k;
    p.repetition_penalty = penalty;
    p.top_logprobs = top_logprobs;
    p.logprobs = logprobs;
    mixes.push_back({std::move(name), p});
  };
  add("greedy", 0.0f, 1.0f, 0, 1.0f, 0);
  add("greedy+logprobs", 0.0f, 1.0f, 0, 1.0f, 2, true);
  add("t0.8 top_p0.8 (GLM-4 defaults)", 0.8f, 0.8f, 0, 1.0f, 0);
  add("t0.7 top_p0.9", 0.7f, 0.9f, 0, 1.0f, 0, true);
  add("t0.7 top_k50", 0.7f, 1.0f, 50, 1.0f, 0, true);
  add("t0.8 top_p0.9 rep1.1 5 logprobs", 0.8f, 0.9f, 0, 1.1f, 5);
  add("t1.0 full distribution", 1.0f, 1.0f, 0, 1.0f, 0, true);
  add("t0.7 full distribution", 0.7f, 1.0f, 0, 1.0f, 0);
  add("t1.3 top_k200 top_p0.95", 1.3f, 0.95f, 200, 1.05f, 3);
  add("t0.5 top_p0.99", 0.5f, 0.99f, 0, 1.0f, 0);
  return mixes;
}

class RealVocabularyTest : public cpu::SimdLevelTest {};

TEST_P(RealVocabularyTest, SameTokensAsTheReferenceSampler) {
  testing::ReferenceSampler reference;
  Sampler sampler;
  absl::flat_hash_set<int32_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert((i * 7919) % kRealVocab);
  const std::vector<int32_t> suppressed = {151329, 151336, 151338};
  for (bool peaked : {true, false}) {
    for (const Mix& mix : RealVocabMixes()) {
      for (int step = 0; step < 12; ++step) {
        const std::vector<float> row = RealVocabRow(peaked, 100 + step);
        // Suppression (min_tokens) on odd steps, with the spiked ids among the seen ones.
        absl::Span<const int32_t> suppress;
        if (step % 2 == 1) suppress = suppressed;
        const SampledToken expected = reference.Sample(row, mix.params, seen, suppress, 9, step);
        std::vector<float> scratch = row;
        const SampledToken got = sampler.SampleInPlace(absl::MakeSpan(scratch), mix.params,
                                                       seen, suppress, 9, step);
        const std::string where = (peaked ? "peaked " : "flat ") + mix.name + " step " +
                                  std::to_string(step);
        ASSERT_EQ(got.token_id, expected.token_id) << where;
        const bool logprobs = mix.params.logprobs || mix.params.top_logprobs > 0;
        ASSERT_EQ(got.has_logprob, logprobs) << where;
        if (logprobs) EXPECT_NEAR(got.logprob, expected.logprob, 1e-5) << where;
        ASSERT_EQ(got.top_logprobs.size(), expected.top_logprobs.size()) << where;
        for (size_t i = 0; i < got.top_logprobs.size(); ++i) {
          EXPECT_EQ(got.top_logprobs[i].token_id, expected.top_logprobs[i].token_id) << where;
          EXPECT_NEAR(got.top_logprobs[i].logprob, expected.top_logprobs[i].logprob, 1e-5)
              << where;
        }
      }
    }
  }
}

TEST_P(RealVocabularyTest, NearlyUniformRowsKeepAHugeNucleus) {
  // Every value within 0.01: the nucleus is most of the vocabulary, beyond every mass
  // threshold, and its candidate set is halved before sorting.
  std::vector<float> row(kRealVocab);
  for (int i = 0; i < kRealVocab; ++i) row[i] = 0.01f * static_cast<float>((i * 31) % 101) / 101;
  SamplingParams params;
  params.top_p = 0.5f;
  params.top_logprobs = 4;
  testing::ReferenceSampler reference;
  Sampler sampler;
  for (int step = 0; step < 6; ++step) {
    const SampledToken expected = reference.Sample(row, params, kNoneSeen, {}, 3, step);
    const SampledToken got = sampler.Sample(row, params, kNoneSeen, {}, 3, step);
    EXPECT_EQ(got.token_id, expected.token_id) << step;
    ASSERT_EQ(got.top_logprobs.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(got.top_logprobs[i].token_id, expected.top_logprobs[i].token_id);
    }
  }
}

TEST_P(RealVocabularyTest, NanLogitsNeitherHangNorReadPastTheCandidates) {
  // A model that overflowed: NaNs among the logits (never collected as candidates).
  std::vector<float> row = RealVocabRow(false, 3);
  for (int i = 0; i < kRealVocab; i += 7) row[i] = std::nanf("");
  SamplingParams params;
  params.temperature = 0.8f;
  params.top_p = 0.999999f;  // beyond what the finite weights can reach after rounding
  params.top_logprobs = 5;
  Sampler sampler;
  for (int step = 0; step < 3; ++step) {
    SampledToken token = sampler.Sample(row, params, kNoneSeen, {}, 1, step);
    ASSERT_GE(token.token_id, 0);
    ASSERT_LT(token.token_id, kRealVocab);
    EXPECT_LE(token.top_logprobs.size(), 5u);
  }
  std::vector<float> all_nan(1000, std::nanf(""));
  SampledToken token = sampler.Sample(all_nan, params, kNoneSeen, {}, 1, 0);
  EXPECT_EQ(token.token_id, 0);
  EXPECT_TRUE(token.top_logprobs.empty());
}

TEST_P(RealVocabularyTest, SignedZerosTieLikeTheReference) {
  std::vector<float> row(5000, -3.0f);
  row[10] = 0.0f;
  row[4] = -0.0f;  // equal to +0: the lower id (4) goes first
  row[2000] = 0.0f;
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 2;
  params.top_logprobs = 3;
  testing::ReferenceSampler reference;
  Sampler sampler;
  for (int step = 0; step < 20; ++step) {
    const SampledToken expected = reference.Sample(row, params, kNoneSeen, {}, 8, step);
    const SampledToken got = sampler.Sample(row, params, kNoneSeen, {}, 8, step);
    EXPECT_EQ(got.token_id, expected.token_id);
    ASSERT_EQ(got.top_logprobs.size(), 3u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(got.top_logprobs[k].token_id, expected.top_logprobs[k].token_id) << k;
    }
  }
}

TEST_P(RealVocabularyTest, EverythingSuppressedFallsBackToIdZero) {
  std::vector<float> row(1000, -INFINITY);
  SamplingParams params;
  params.temperature = 0.7f;
  params.top_p = 0.9f;
  Sampler sampler;
  EXPECT_EQ(sampler.Sample(row, params, kNoneSeen, {}, 1, 0).token_id, 0);
  params.temperature = 0;
  EXPECT_EQ(sampler.Sample(row, params, kNoneSeen, {}, 1, 0).token_id, 0);
}

GLM4V_INSTANTIATE_SIMD_LEVELS(RealVocabularyTest);

TEST(SamplerTest, GreedyWithoutLogprobsComputesNoNormalizer) {
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0;
  SampledToken token = sampler.Sample(kLogits, params, kNoneSeen, {}, 1, 0);
  EXPECT_EQ(token.token_id, 1);
  EXPECT_FALSE(token.has_logprob);
  EXPECT_TRUE(token.top_logprobs.empty());
  params.logprobs = true;
  token = sampler.Sample(kLogits, params, kNoneSeen, {}, 1, 0);
  EXPECT_TRUE(token.has_logprob);
  std::vector<double> raw(kLogits.begin(), kLogits.end());
  EXPECT_NEAR(token.logprob, std::log(Softmax(raw)[1]), 1e-6);
}

}  // namespace
}  // namespace glm4v::worker
