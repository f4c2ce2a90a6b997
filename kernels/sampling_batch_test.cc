// SamplingBatchHost's rows and lists, its validation (shared by every backend's SampleRows), and
// the CPU backend, which samples on the host (the engine's sampler) rather than in SampleRows.
#include "kernels/sampling_batch.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/backends.h"

namespace glm4v {
namespace {

TEST(SamplingBatchTest, RowsKeepTheirIdLists) {
  SamplingBatchHost batch;
  RowSamplingParams a;
  a.top_logprobs = 3;
  batch.AddRow(a, {5, 9}, {});
  RowSamplingParams b;
  b.logprobs = true;
  batch.AddRow(b, {}, {1, 2, 3});
  EXPECT_EQ(batch.num_rows(), 2);
  EXPECT_EQ(std::vector<int32_t>(batch.penalty(0).begin(), batch.penalty(0).end()),
            (std::vector<int32_t>{5, 9}));
  EXPECT_TRUE(batch.penalty(1).empty());
  EXPECT_TRUE(batch.suppressed(0).empty());
  EXPECT_EQ(batch.suppressed(1).size(), 3u);
  EXPECT_EQ(batch.max_top_logprobs(), 3);
  EXPECT_TRUE(batch.any_logprobs());
  EXPECT_TRUE(ValidateSamplingBatch(batch, 2, 10).ok());
  RowSamplingParams c;
  batch.AddRow(c, {}, {}, std::vector<int32_t>{4, 8}, std::vector<float>{1.5f, -2.0f});
  EXPECT_TRUE(batch.adjusted_ids(0).empty());
  EXPECT_EQ(std::vector<int32_t>(batch.adjusted_ids(2).begin(), batch.adjusted_ids(2).end()),
            (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(batch.adjustments(2)[1], -2.0f);
  EXPECT_TRUE(ValidateSamplingBatch(batch, 3, 10).ok());
  // An adjusted id outside the vocabulary, a non-finite value, or ids without values.
  EXPECT_FALSE(ValidateSamplingBatch(batch, 3, 8).ok());
  SamplingBatchHost inf = batch;
  inf.adjust_values[0] = INFINITY;
  EXPECT_FALSE(ValidateSamplingBatch(inf, 3, 10).ok());
  SamplingBatchHost missing = batch;
  missing.adjust_values.pop_back();
  EXPECT_FALSE(ValidateSamplingBatch(missing, 3, 10).ok());
}

TEST(SamplingBatchTest, ValidationNamesWhatIsWrong) {
  SamplingBatchHost batch;
  batch.AddRow(RowSamplingParams{}, {3}, {});
  EXPECT_EQ(ValidateSamplingBatch(batch, 2, 10).code(), absl::StatusCode::kInvalidArgument);
  absl::Status outside = ValidateSamplingBatch(batch, 1, 3);
  EXPECT_EQ(outside.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(outside.message().find("outside the vocabulary"), std::string::npos) << outside;
  SamplingBatchHost bad_offsets = batch;
  bad_offsets.penalty_offsets = {0, 2};
  EXPECT_EQ(ValidateSamplingBatch(bad_offsets, 1, 10).code(), absl::StatusCode::kInvalidArgument);
  SamplingBatchHost bad_penalty;
  RowSamplingParams zero;
  zero.repetition_penalty = 0.0f;
  bad_penalty.AddRow(zero, {}, {});
  EXPECT_EQ(ValidateSamplingBatch(bad_penalty, 1, 10).code(), absl::StatusCode::kInvalidArgument);
  SamplingBatchHost many_alternatives;
  RowSamplingParams many;
  many.top_logprobs = kMaxSampledTopLogprobs + 1;
  many_alternatives.AddRow(many, {}, {});
  EXPECT_EQ(ValidateSamplingBatch(many_alternatives, 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
  SamplingBatchHost nan_temperature;
  RowSamplingParams nan;
  nan.temperature = NAN;
  nan_temperature.AddRow(nan, {}, {});
  EXPECT_EQ(ValidateSamplingBatch(nan_temperature, 1, 10).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SamplingBatchTest, TheCpuBackendSamplesOnTheHost) {
  absl::StatusOr<Backend*> cpu = GetBackend("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_FALSE((*cpu)->samples_on_device());
  Tensor logits = Tensor::FromF32({1, 4}, {0.f, 1.f, 2.f, 3.f});
  SamplingBatchHost batch;
  batch.AddRow(RowSamplingParams{}, {}, {});
  EXPECT_EQ((*cpu)->SampleRows(&logits, batch).status().code(), absl::StatusCode::kUnimplemented);
  SamplingBatchHost wrong;  // validated before the backend is asked
  EXPECT_EQ((*cpu)->SampleRows(&logits, wrong).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*cpu)->SampleRows(nullptr, batch).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
