// All golden cases of the tiny checkpoint pass on the CUDA backend with the README's GPU bf16
// tolerances. Skips with the reason when this machine has no CUDA device.
#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "tests/golden/golden_expectations.h"
#include "tests/golden/golden_runner.h"

namespace glm4v {
namespace {

TEST(GoldenCudaTest, TinyGlm4vAllCasesPass) {
  auto backend = GetBackend("cuda");
  // Only "no device" skips; "cuda" missing from the binary or failing to initialize fails.
  if (backend.status().code() == absl::StatusCode::kUnavailable) {
    GTEST_SKIP() << backend.status().message();
  }
  ASSERT_TRUE(backend.ok()) << backend.status();
  ASSERT_EQ(GoldenToleranceFor(**backend), GoldenTolerance::kGpuBf16);
  ExpectTinyGoldenCasesPass("tests/data/tiny-glm4v", *backend, GoldenTolerance::kGpuBf16);
}

}  // namespace
}  // namespace glm4v
