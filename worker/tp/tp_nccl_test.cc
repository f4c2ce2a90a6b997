// The tensor-parallel group with NCCL collectives on the CUDA backend. A one-GPU machine cannot
// host two NCCL ranks, so this runs TP = 1 with --tp_collectives=nccl semantics: the decoder's
// all-reduces and logits all-gather still go through a (one-rank) NcclCommunicator on device
// buffers, on the backend's stream. The golden prompt logits must match at the GPU tolerance
// (tests/golden: cosine >= 0.999 per row). Skips with the reason when there is no CUDA device.
#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/greedy_generate.h"
#include "worker/tp/testing/golden_cases.h"
#include "worker/tp/tp_group.h"

namespace glm4v::worker::tp {
namespace {

constexpr double kMinRowCosine = 0.999;  // tests/golden/golden_runner.cc, GPU tolerance

// OK when every row of `ours` has cosine >= kMinRowCosine with the same row of `golden`.
absl::Status CompareRowCosine(const Tensor& ours, const Tensor& golden) {
  if (ours.ndim() != 2 || ours.dim(0) != golden.dim(0) || ours.dim(1) != golden.dim(1)) {
    return absl::InvalidArgumentError("logits shape differs from golden");
  }
  const int64_t rows = golden.dim(0), cols = golden.dim(1);
  double worst = 1.0;
  int64_t worst_row = -1;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = ours.data<float>() + r * cols;
    const float* y = golden.data<float>() + r * cols;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t c = 0; c < cols; ++c) {
      xy += double{x[c]} * y[c];
      xx += double{x[c]} * x[c];
      yy += double{y[c]} * y[c];
    }
    double cosine = xx == 0 && yy == 0 ? 1.0 : xy / std::sqrt(xx * yy);
    if (std::isnan(cosine)) cosine = -INFINITY;
    if (cosine < worst) {
      worst = cosine;
      worst_row = r;
    }
  }
  if (worst >= kMinRowCosine) return absl::OkStatus();
  return absl::InternalError(absl::StrFormat("min row cosine %.6f at row %d of %d (tol >= %.3f)",
                                             worst, worst_row, rows, kMinRowCosine));
}

TEST(TpNcclTest, Tp1NcclCollectivesReproduceGoldenLogits) {
  absl::StatusOr<Backend*> backend = GetBackend("cuda");
  // Only "no device" skips; "cuda" missing from the binary or failing to initialize fails.
  if (backend.status().code() == absl::StatusCode::kUnavailable) {
    GTEST_SKIP() << "no CUDA device, NCCL tensor-parallel test skipped: "
                 << backend.status().message();
  }
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto cases = testing::LoadGoldenCases();
  ASSERT_TRUE(cases.ok()) << cases.status();

  TensorParallelOptions options;
  options.model_dir = testing::kModelDir;
  options.backend = "cuda";
  options.tp_size = 1;
  options.collectives = "nccl";
  options.timeout = absl::Seconds(60);
  auto runner = StartTensorParallelGroup(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->collectives_backend(), "nccl");

  for (const testing::GoldenCase& c : *cases) {
    SCOPED_TRACE(c.kind);
    GreedyOptions greedy;
    greedy.max_new_tokens = static_cast<int>(c.greedy_ids.size());
    greedy.return_prompt_logits = true;
    greedy.block_size = 4;
    absl::StatusOr<GreedyResult> result =
        GenerateGreedy((*runner)->decoder(), c.prompt, c.features, greedy);
    ASSERT_TRUE(result.ok()) << result.status();
    absl::Status match = CompareRowCosine(result->prompt_logits, c.prompt_logits);
    EXPECT_TRUE(match.ok()) << match;
    EXPECT_EQ(result->ids.size(), c.greedy_ids.size());
  }
}

TEST(TpNcclTest, AutoOnCpuUsesNoNccl) {
  // TP = 1 on the CPU backend: "auto" builds no collectives communicator at all.
  TensorParallelOptions options;
  options.model_dir = testing::kModelDir;
  options.tp_size = 1;
  auto runner = StartTensorParallelGroup(options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->collectives_backend(), "none");
}

TEST(TpNcclTest, NcclNeedsTheCudaBackend) {
  TensorParallelOptions options;
  options.model_dir = testing::kModelDir;
  options.tp_size = 1;
  options.collectives = "nccl";
  auto runner = StartTensorParallelGroup(options);
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kFailedPrecondition) << runner.status();
}

TEST(TpNcclTest, UnknownCollectivesModeIsInvalid) {
  TensorParallelOptions options;
  options.model_dir = testing::kModelDir;
  options.collectives = "mpi";
  auto runner = StartTensorParallelGroup(options);
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kInvalidArgument) << runner.status();
}

}  // namespace
}  // namespace glm4v::worker::tp
