// All golden cases of the tiny checkpoint (tests/data/tiny-glm4v) pass on the CPU backend.
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "tests/golden/golden_runner.h"

namespace glm4v {
namespace {

TEST(GoldenTest, TinyGlm4vAllCasesPass) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto results = RunGoldenCases("tests/data/tiny-glm4v", *backend);
  ASSERT_TRUE(results.ok()) << results.status();
  int kinds_seen[4] = {0, 0, 0, 0};
  for (const GoldenCaseResult& r : *results) {
    EXPECT_TRUE(r.passed) << r.kind << ": " << r.summary;
    std::printf("%s %s: %s\n", r.passed ? "OK  " : "FAIL", r.kind.c_str(), r.summary.c_str());
    kinds_seen[0] += r.kind == "preprocess";
    kinds_seen[1] += r.kind == "vision";
    kinds_seen[2] += r.kind == "multimodal";
    kinds_seen[3] += r.kind == "text";
  }
  // The tiny set has every kind; a runner that silently skipped one would not notice.
  EXPECT_EQ(kinds_seen[0], 4);
  EXPECT_EQ(kinds_seen[1], 1);
  EXPECT_EQ(kinds_seen[2], 1);
  EXPECT_EQ(kinds_seen[3], 1);
}

TEST(GoldenTest, MissingDirectoryIsAnError) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok());
  EXPECT_FALSE(RunGoldenCases("tests/data/no-such-golden", *backend).ok());
}

}  // namespace
}  // namespace glm4v
