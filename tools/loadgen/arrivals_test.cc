#include "tools/loadgen/arrivals.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v::loadgen {
namespace {

TEST(ArrivalsTest, ParseKinds) {
  EXPECT_EQ(*ParseArrivalKind("poisson"), ArrivalKind::kPoisson);
  EXPECT_EQ(*ParseArrivalKind("constant"), ArrivalKind::kConstant);
  EXPECT_FALSE(ParseArrivalKind("gamma").ok());
}

TEST(ArrivalsTest, ConstantRateHasFixedGaps) {
  ArrivalProcess p(ArrivalKind::kConstant, 4.0, 1);
  EXPECT_TRUE(p.paced());
  for (int i = 0; i < 10; ++i) EXPECT_DOUBLE_EQ(p.NextGapSeconds(), 0.25);
}

TEST(ArrivalsTest, UnpacedSendsAtOnce) {
  for (double rate : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
    ArrivalProcess p(ArrivalKind::kPoisson, rate, 1);
    EXPECT_FALSE(p.paced());
    EXPECT_EQ(p.NextGapSeconds(), 0.0);
  }
}

// Exponential gaps: mean 1/rate and coefficient of variation 1 (a constant process has 0).
TEST(ArrivalsTest, PoissonGapsHaveTheRightMoments) {
  const double rate = 20.0;
  ArrivalProcess p(ArrivalKind::kPoisson, rate, 7);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double g = p.NextGapSeconds();
    ASSERT_GE(g, 0.0);
    sum += g;
    sum_sq += g * g;
  }
  const double mean = sum / n;
  const double var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 1.0 / rate, 0.01 / rate);
  EXPECT_NEAR(std::sqrt(var) / mean, 1.0, 0.02);
}

TEST(ArrivalsTest, SameSeedSameSchedule) {
  ArrivalProcess a(ArrivalKind::kPoisson, 5.0, 42), b(ArrivalKind::kPoisson, 5.0, 42),
      c(ArrivalKind::kPoisson, 5.0, 43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double x = a.NextGapSeconds();
    EXPECT_EQ(x, b.NextGapSeconds());
    differs |= x != c.NextGapSeconds();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace glm4v::loadgen
