// Backend::SampleRows on the CUDA backend at GLM-4's real vocabulary: greedy rows with the
// repetition penalty and suppression against the host's own edits + argmax, logprobs against
// double precision, seeded draws independent of the batch, and the drawn distribution against
// softmax (chi-square). Skips without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace glm4v::cuda {
namespace {

constexpr int kVocab = 151552;

class CudaSamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << NoDeviceReason();
    absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(0);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }

  // Uploads rows (f32 [rows, vocab]) and samples them.
  absl::StatusOr<SampledRows> Sample(const std::vector<float>& rows, int64_t vocab,
                                     const SamplingBatchHost& batch) {
    const int64_t n = static_cast<int64_t>(rows.size()) / vocab;
    absl::StatusOr<Tensor> logits = backend_->Upload(Tensor::FromF32({n, vocab}, rows));
    if (!logits.ok()) return logits.status();
    return backend_->SampleRows(&*logits, batch);
  }

  std::unique_ptr<CudaBackend> backend_;
};

std::vector<float> RandomRows(int rows, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> out(static_cast<size_t>(rows) * vocab);
  for (float& v : out) v = normal(rng);
  return out;
}

int32_t HostArgmax(const float* row, int vocab) {
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

TEST_F(CudaSamplingTest, GreedyRowsWithPenaltyAndSuppressionMatchTheHost) {
  std::vector<float> rows = RandomRows(3, kVocab, 1);
  std::vector<float> edited = rows;
  SamplingBatchHost batch;
  RowSamplingParams greedy;
  greedy.temperature = 0.0f;
  batch.AddRow(greedy, {}, {});
  // Row 1: its argmax seen (a penalty of 100 pushes it below the rest).
  RowSamplingParams penalized = greedy;
  penalized.repetition_penalty = 100.0f;
  const int32_t top1 = HostArgmax(rows.data() + kVocab, kVocab);
  float& x = edited[kVocab + top1];
  x = x > 0 ? x / 100.0f : x * 100.0f;
  batch.AddRow(penalized, {top1}, {});
  // Row 2: its best three suppressed.
  std::vector<int32_t> suppressed;
  for (int k = 0; k < 3; ++k) {
    const int32_t id = HostArgmax(edited.data() + 2 * kVocab, kVocab);
    suppressed.push_back(id);
    edited[2 * kVocab + id] = -INFINITY;
  }
  batch.AddRow(greedy, {}, suppressed);
  absl::StatusOr<SampledRows> out = Sample(rows, kVocab, batch);
  ASSERT_TRUE(out.ok()) << out.status();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(out->token_ids[r], HostArgmax(edited.data() + r * kVocab, kVocab)) << r;
  }
}

// logit_bias / presence / frequency adjustments come first, then the repetition penalty: the
// same order as the engine's host path (worker/step_sampling.cc).
TEST_F(CudaSamplingTest, AdditiveAdjustmentsThenPenaltyMatchTheHost) {
  std::vector<float> rows = RandomRows(2, kVocab, 5);
  std::vector<float> edited = rows;
  SamplingBatchHost batch;
  RowSamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 1.5f;
  params.logprobs = true;
  // Row 0: a low token lifted to the top by a bias, the old best lowered.
  const int32_t best = HostArgmax(rows.data(), kVocab);
  const int32_t lifted = best == 7 ? 8 : 7;
  const std::vector<int32_t> ids0 = {lifted, best};
  const std::vector<float> values0 = {40.0f, -3.5f};
  for (size_t i = 0; i < ids0.size(); ++i) edited[ids0[i]] += values0[i];
  float& p0 = edited[lifted];
  p0 = p0 > 0 ? p0 / 1.5f : p0 * 1.5f;
  batch.AddRow(params, {lifted}, {}, ids0, values0);
  // Row 1: adjustments only at the far end of the vocabulary.
  const std::vector<int32_t> ids1 = {kVocab - 2, kVocab - 1};
  const std::vector<float> values1 = {30.0f, 31.0f};
  for (size_t i = 0; i < ids1.size(); ++i) edited[kVocab + ids1[i]] += values1[i];
  batch.AddRow(params, {}, {}, ids1, values1);
  absl::StatusOr<SampledRows> out = Sample(rows, kVocab, batch);
  ASSERT_TRUE(out.ok()) << out.status();
  for (int r = 0; r < 2; ++r) {
    const float* row = edited.data() + r * kVocab;
    const int32_t want = HostArgmax(row, kVocab);
    EXPECT_EQ(out->token_ids[r], want) << r;
    double z = 0;
    for (int i = 0; i < kVocab; ++i) z += std::exp(static_cast<double>(row[i]) - row[want]);
    EXPECT_NEAR(out->logprobs[r], -std::log(z), 1e-4) << r;
  }
}

TEST_F(CudaSamplingTest, LogprobsMatchDoublePrecision) {
  std::vector<float> rows = RandomRows(2, kVocab, 2);
  SamplingBatchHost batch;
  RowSamplingParams p;
  p.temperature = 0.7f;
  p.seed = 3;
  p.logprobs = true;
  p.top_logprobs = 5;
  batch.AddRow(p, {}, {});
  RowSamplingParams greedy;
  greedy.logprobs = true;
  batch.AddRow(greedy, {}, {});
  absl::StatusOr<SampledRows> out = Sample(rows, kVocab, batch);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->top_count, 5);
  for (int r = 0; r < 2; ++r) {
    const double d = r == 0 ? 0.7 : 1.0;
    const float* row = rows.data() + r * kVocab;
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < kVocab; ++i) max = std::max(max, row[i] / d);
    for (int i = 0; i < kVocab; ++i) sum += std::exp(row[i] / d - max);
    const double log_z = max + std::log(sum);
    EXPECT_NEAR(out->logprobs[r], row[out->token_ids[r]] / d - log_z, 1e-4) << r;
    if (r == 1) {
      EXPECT_EQ(out->token_ids[r], HostArgmax(row, kVocab));
      EXPECT_EQ(out->top_ids[r * 5], -1);  // asked for none
      continue;
    }
    std::vector<int32_t> order(kVocab);
    for (int i = 0; i < kVocab; ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(out->top_ids[k], order[k]);
      EXPECT_NEAR(out->top_logprobs[k], row[order[k]] / d - log_z, 1e-4);
    }
  }
}

TEST_F(CudaSamplingTest, SeededDrawsDoNotDependOnTheBatch) {
  std::vector<float> rows = RandomRows(8, kVocab, 4);
  RowSamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.95f;
  p.seed = 1234;
  p.step = 17;
  SamplingBatchHost alone;
  alone.AddRow(p, {}, {});
  absl::StatusOr<SampledRows> a = Sample(std::vector<float>(rows.begin(), rows.begin() + kVocab),
                                         kVocab, alone);
  ASSERT_TRUE(a.ok()) << a.status();
  SamplingBatchHost batched;
  batched.AddRow(p, {}, {});
  for (int r = 1; r < 8; ++r) {
    RowSamplingParams other = p;
    other.seed = r;
    batched.AddRow(other, {}, {});
  }
  absl::StatusOr<SampledRows> b = Sample(rows, kVocab, batched);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->token_ids[0], b->token_ids[0]);
}

TEST_F(CudaSamplingTest, TemperatureTopKDrawsFollowTheDistribution) {
  const std::vector<float> logits = {1.0f, 2.5f, 0.3f, -1.0f, 2.0f, 0.0f, 1.7f, -0.5f};
  constexpr int kDraws = 4096;
  std::vector<float> rows;
  SamplingBatchHost batch;
  for (int i = 0; i < kDraws; ++i) {
    rows.insert(rows.end(), logits.begin(), logits.end());
    RowSamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 4;
    p.seed = 99;
    p.step = i;
    batch.AddRow(p, {}, {});
  }
  absl::StatusOr<SampledRows> out = Sample(rows, 8, batch);
  ASSERT_TRUE(out.ok()) << out.status();
  // Top 4: ids 1, 4, 6, 0.
  const int kept[] = {1, 4, 6, 0};
  double z = 0;
  for (int id : kept) z += std::exp(logits[id]);
  std::vector<int> counts(8, 0);
  for (int32_t id : out->token_ids) ++counts[id];
  double chi2 = 0;
  for (int id : kept) {
    const double e = kDraws * std::exp(logits[id]) / z;
    chi2 += (counts[id] - e) * (counts[id] - e) / e;
  }
  EXPECT_EQ(counts[2] + counts[3] + counts[5] + counts[7], 0);
  EXPECT_LT(chi2, 16.27);  // 3 degrees of freedom, p = 0.001
}

TEST_F(CudaSamplingTest, MalformedBatchesAreRejected) {
  std::vector<float> rows = RandomRows(2, 100, 5);
  SamplingBatchHost batch;
  batch.AddRow(RowSamplingParams{}, {100}, {});  // id outside the vocabulary
  batch.AddRow(RowSamplingParams{}, {}, {});
  EXPECT_EQ(Sample(rows, 100, batch).status().code(), absl::StatusCode::kInvalidArgument);
  SamplingBatchHost short_batch;
  short_batch.AddRow(RowSamplingParams{}, {}, {});
  EXPECT_EQ(Sample(rows, 100, short_batch).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v::cuda
