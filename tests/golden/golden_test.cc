// All golden cases of the tiny checkpoint (tests/data/tiny-glm4v) pass on the CPU backend
// with the README's CPU fp32 tolerances.
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "tests/golden/golden_expectations.h"
#include "tests/golden/golden_runner.h"

namespace glm4v {
namespace {

TEST(GoldenTest, TinyGlm4vAllCasesPass) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  ASSERT_EQ(GoldenToleranceFor(**backend), GoldenTolerance::kCpuFp32);
  ExpectTinyGoldenCasesPass("tests/data/tiny-glm4v", *backend, GoldenTolerance::kCpuFp32);
}

// fp32 results meet the looser GPU criteria too; this runs the row-cosine, argmax-margin and
// greedy-divergence checks that golden_cuda_test relies on, on a machine without a GPU.
TEST(GoldenTest, CpuResultsMeetGpuTolerances) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  ExpectTinyGoldenCasesPass("tests/data/tiny-glm4v", *backend, GoldenTolerance::kGpuBf16);
}

// The GPU's storage precision on the CPU: bf16 weight matrices and a bf16 KV cache (f32
// activations) meet the README's GPU bf16 tolerances.
TEST(GoldenTest, CpuBf16WeightsAndKvCacheMeetGpuTolerances) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  GoldenOptions options;
  options.weight_dtype = DType::kBF16;
  options.kv_dtype = DType::kBF16;
  ExpectTinyGoldenCasesPass("tests/data/tiny-glm4v", *backend, GoldenTolerance::kGpuBf16,
                            options);
}

TEST(GoldenTest, MissingDirectoryIsAnError) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok());
  EXPECT_FALSE(RunGoldenCases("tests/data/no-such-golden", *backend).ok());
}

}  // namespace
}  // namespace glm4v
