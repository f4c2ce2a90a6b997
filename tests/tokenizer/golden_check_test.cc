#include "tests/tokenizer/golden_check.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace glm4v::tokenizer {
namespace {

constexpr char kGolden[] = "tests/data/tokenizer/tokenizer_golden.json";
constexpr char kRanks[] = "tests/data/tokenizer/cl100k_base.tiktoken";

TEST(GoldenCheckTest, EveryTiktokenCaseMatches) {
  auto report = RunGoldenCheck(kGolden, kRanks);
  ASSERT_TRUE(report.ok()) << report.status();
  for (const std::string& m : report->mismatches) ADD_FAILURE() << m;
  EXPECT_GE(report->cases, 15);
  EXPECT_GE(report->checks, 4 * report->cases);
}

// The checker itself must be able to fail: a golden with a wrong id is reported.
TEST(GoldenCheckTest, ReportsAWrongId) {
  const std::string path = ::testing::TempDir() + "/bad_golden.json";
  std::ofstream(path) << R"({"cases": [{"text": "Hello, world!", "ids": [9906, 11, 1917, 1],
                             "ordinary_ids": [9906, 11, 1917, 0]}]})";
  auto report = RunGoldenCheck(path, kRanks);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->mismatches.size(), 2u);  // Encode differs and the ids do not decode back.
  EXPECT_NE(report->mismatches[0].find("want [9906,11,1917,1]"), std::string::npos);
}

TEST(GoldenCheckTest, RanksFileDefaultsToTheGoldensOwn) {
  auto report = RunGoldenCheck(kGolden, "");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok());
}

TEST(GoldenCheckTest, MalformedGoldenIsAnError) {
  const std::string path = ::testing::TempDir() + "/not_golden.json";
  std::ofstream(path) << "{\"cases\": 3}";
  EXPECT_FALSE(RunGoldenCheck(path, kRanks).ok());
  EXPECT_FALSE(RunGoldenCheck("/nonexistent.json", kRanks).ok());
}

}  // namespace
}  // namespace glm4v::tokenizer
