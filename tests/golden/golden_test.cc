// All golden cases of the tiny checkpoint (tests/data/tiny-glm4v) pass on the CPU backend
// with the README's CPU fp32 tolerances.
#include <cstdio>
#include <string>

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

// The text-only long-context golden (issue #17): GLM-4-9B-chat-1M's layout (no vision tower,
// rope_ratio 500) and a 12,000-token prompt prefilled in chunks, at the CPU fp32 tolerances;
// then with a bf16 KV cache at the GPU rules.
TEST(GoldenTest, LongGlm4TextOnlyTwelveThousandTokens) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  for (const bool bf16_kv : {false, true}) {
    GoldenOptions options;
    if (bf16_kv) options.kv_dtype = DType::kBF16;
    const GoldenTolerance tolerance =
        bf16_kv ? GoldenTolerance::kGpuBf16 : GoldenTolerance::kCpuFp32;
    auto results = RunGoldenCases("tests/data/long-glm4", *backend, tolerance, options);
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->size(), 1u);
    const GoldenCaseResult& r = results->front();
    std::printf("%s %s: %s\n", r.passed ? "OK  " : "FAIL", GoldenToleranceName(tolerance),
                r.summary.c_str());
    EXPECT_EQ(r.kind, "long_text");
    EXPECT_TRUE(r.passed) << r.summary;
  }
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

// Weights quantized at load from the bf16 checkpoint (issue #16). int8 keeps the argmax of
// every prompt row whose golden margin exceeds 0.05 and the greedy ids (the GPU rules); the row
// cosines it reaches on this tiny random model (0.998-0.9999, below the 0.9999: its
// 2 x 64-wide layers amplify weight noise ~10x) are printed, and documented in
// docs/PERFORMANCE.md with the int4 figures (int4 changes greedy choices on this model).
TEST(GoldenTest, Int8WeightsKeepTheGoldenArgmaxAndGreedyIds) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  GoldenOptions options;
  options.quantization = WeightFormat::kInt8;
  auto results = RunGoldenCases("tests/data/tiny-glm4v", *backend, GoldenTolerance::kInt8, options);
  ASSERT_TRUE(results.ok()) << results.status();
  int generation_cases = 0;
  for (const GoldenCaseResult& r : *results) {
    std::printf("%s %s\n", r.passed ? "OK  " : "MISS", r.summary.c_str());
    ASSERT_EQ(r.summary.find("ERROR"), std::string::npos) << r.summary;
    if (r.kind == "preprocess") {
      EXPECT_TRUE(r.passed) << r.summary;
    }
    if (r.kind == "multimodal" || r.kind == "text") {
      ++generation_cases;
      EXPECT_TRUE(r.argmax_and_greedy_ok) << r.summary;
    }
    EXPECT_GE(r.min_row_cosine, 0.99) << "far below int8's expected error: " << r.summary;
  }
  EXPECT_EQ(generation_cases, 2);
}

TEST(GoldenTest, MissingDirectoryIsAnError) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok());
  EXPECT_FALSE(RunGoldenCases("tests/data/no-such-golden", *backend).ok());
}

}  // namespace
}  // namespace glm4v
