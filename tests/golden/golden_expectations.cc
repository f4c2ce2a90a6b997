#include "tests/golden/golden_expectations.h"

#include <cstdio>

#include "gtest/gtest.h"

namespace glm4v {

void ExpectTinyGoldenCasesPass(const std::string& golden_dir, Backend* backend,
                               GoldenTolerance tolerance, const GoldenOptions& options) {
  auto results = RunGoldenCases(golden_dir, backend, tolerance, options);
  ASSERT_TRUE(results.ok()) << results.status();
  std::printf("backend %s, %s tolerances\n", std::string(backend->name()).c_str(),
              GoldenToleranceName(tolerance));
  int kinds_seen[4] = {0, 0, 0, 0};
  for (const GoldenCaseResult& r : *results) {
    EXPECT_TRUE(r.passed) << r.kind << ": " << r.summary;
    std::printf("%s %s: %s\n", r.passed ? "OK  " : "FAIL", r.kind.c_str(), r.summary.c_str());
    kinds_seen[0] += r.kind == "preprocess";
    kinds_seen[1] += r.kind == "vision";
    kinds_seen[2] += r.kind == "multimodal";
    kinds_seen[3] += r.kind == "text";
  }
  EXPECT_EQ(kinds_seen[0], 4);
  EXPECT_EQ(kinds_seen[1], 1);
  EXPECT_EQ(kinds_seen[2], 1);
  EXPECT_EQ(kinds_seen[3], 1);
}

}  // namespace glm4v
