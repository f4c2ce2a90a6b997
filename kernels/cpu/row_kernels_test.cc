#include "kernels/cpu/row_kernels.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/simd_level_testing.h"

namespace glm4v::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Runs each test once per level this CPU has; levels it lacks are reported as skipped.
class RowKernelsTest : public SimdLevelTest {};

std::vector<float> RandomRow(int n, uint32_t seed, float sigma = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> row(n);
  for (float& v : row) v = normal(rng);
  return row;
}

// Lengths that exercise empty rows, partial vectors, one and two vectors and long rows.
const int kLengths[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 1000, 151552};

TEST_P(RowKernelsTest, MaxRowFindsTheMax) {
  for (int n : kLengths) {
    const std::vector<float> row = RandomRow(n, 1 + n);
    float max = -kInf;
    for (float v : row) max = std::max(max, v);
    EXPECT_EQ(MaxRow(row.data(), n), max) << n;
  }
}

TEST_P(RowKernelsTest, BlockMaxRowFindsEveryBlocksMax) {
  for (int n : kLengths) {
    std::vector<float> row = RandomRow(n, 11 + n);
    if (n > 70) row[65] = std::nanf("");
    const int blocks = (n + kMaxBlock - 1) / kMaxBlock;
    std::vector<float> got(blocks + 1, 123.0f);
    float all = -kInf;
    std::vector<float> expected(blocks, -kInf);
    for (int i = 0; i < n; ++i) {
      if (std::isnan(row[i])) continue;
      expected[i / kMaxBlock] = std::max(expected[i / kMaxBlock], row[i]);
      all = std::max(all, row[i]);
    }
    EXPECT_EQ(BlockMaxRow(row.data(), n, got.data()), all) << n;
    EXPECT_EQ(got[blocks], 123.0f) << "wrote past the last block";
    got.resize(blocks);
    EXPECT_EQ(got, expected) << n;
  }
}

TEST_P(RowKernelsTest, MaxRowSkipsNaN) {
  std::vector<float> row = RandomRow(40, 3);
  row[5] = std::nanf("");
  row[39] = std::nanf("");
  float max = -kInf;
  for (int i = 0; i < 40; ++i) {
    if (i != 5 && i != 39) max = std::max(max, row[i]);
  }
  EXPECT_EQ(MaxRow(row.data(), 40), max);
}

TEST_P(RowKernelsTest, ArgmaxTakesTheFirstMaximum) {
  for (int n : kLengths) {
    if (n == 0) {
      EXPECT_EQ(ArgmaxRow(nullptr, 0), 0);
      continue;
    }
    std::vector<float> row = RandomRow(n, 4 + n);
    int64_t expected = 0;
    for (int i = 1; i < n; ++i) {
      if (row[i] > row[expected]) expected = i;
    }
    EXPECT_EQ(ArgmaxRow(row.data(), n), expected) << n;
    // Ties across lanes and in the tail: the lowest id wins.
    if (n >= 3) {
      row[n - 1] = row[n / 2] = row[1] = 100.0f;
      EXPECT_EQ(ArgmaxRow(row.data(), n), 1) << n;
    }
  }
  std::vector<float> all_suppressed(37, -kInf);
  EXPECT_EQ(ArgmaxRow(all_suppressed.data(), 37), 0);
  std::vector<float> last(37, -kInf);
  last[36] = -5.0f;
  EXPECT_EQ(ArgmaxRow(last.data(), 37), 36);
}

TEST_P(RowKernelsTest, SumExpMatchesDoublePrecision) {
  for (int n : kLengths) {
    std::vector<float> row = RandomRow(n, 5 + n);
    if (n > 10) row[3] = row[n - 2] = -kInf;  // suppressed ids weigh nothing
    for (float scale : {1.0f, 1.0f / 0.7f, 0.5f}) {
      const float shift = 4.0f;
      double expected = 0;
      for (float v : row) expected += std::exp(static_cast<double>(v) * scale - shift);
      const double total = SumExpRow(row.data(), n, scale, shift);
      EXPECT_NEAR(total, expected, 1e-6 * expected + 1e-30) << n << " scale " << scale;
      std::vector<float> terms(n);
      ExpRow(row.data(), n, scale, shift, terms.data());
      double sum = 0;
      for (float t : terms) sum += t;
      EXPECT_NEAR(sum, expected, 1e-6 * expected + 1e-30) << n << " scale " << scale;
    }
  }
}

TEST_P(RowKernelsTest, ExpIsWithinTwoUlpOfStdExp) {
  std::vector<float> row;
  for (float x = -90.0f; x <= 0.0f; x += 0.00731f) row.push_back(x);
  row.push_back(-kInf);
  row.push_back(0.0f);
  std::vector<float> out(row.size());
  ExpRow(row.data(), row.size(), 1.0f, 0.0f, out.data());
  for (size_t i = 0; i < row.size(); ++i) {
    const float expected = std::exp(row[i]);
    if (row[i] < -87.3f) {
      EXPECT_LE(out[i], 1.01f * std::exp(-87.3f)) << row[i];  // may flush to 0
      continue;
    }
    const float ulp = std::nextafter(expected, kInf) - expected;
    EXPECT_LE(std::fabs(out[i] - expected), 2 * ulp) << row[i];
  }
}

// GELU against float64 erf: within 2.5e-7 x (1 + |x|) everywhere (A&S 7.1.26's 1.5e-7 on erf
// plus f32 rounding), every length (the vector tails), and infinities kept.
TEST_P(RowKernelsTest, GeluMatchesFloat64Erf) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.000917f) x.push_back(v);
  for (int n : kLengths) {
    for (float v : RandomRow(n, 40 + n)) x.push_back(v);
  }
  x.push_back(kInf);
  std::vector<float> y = x;
  GeluRow(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double xd = x[i];
    const double want = 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0)));
    ASSERT_NEAR(y[i], want, 2.5e-7 * (1.0 + std::fabs(xd))) << "x " << x[i];
  }
  EXPECT_EQ(y.back(), kInf);
  for (int n : kLengths) {  // only the n values asked for are written
    std::vector<float> row = RandomRow(n + 3, 70 + n);
    const std::vector<float> before = row;
    GeluRow(row.data(), n);
    for (int i = n; i < n + 3; ++i) ASSERT_EQ(row[i], before[i]) << n;
  }
}

TEST_P(RowKernelsTest, SiluMulMatchesFloat64) {
  for (int n : kLengths) {
    std::vector<float> a = RandomRow(n, 80 + n, 6.0f), b = RandomRow(n + 2, 90 + n);
    a.push_back(-200.0f);  // exp(200) past f32: SiLU is then ~0
    a.push_back(200.0f);
    std::vector<float> y(n + 2);
    SiluMulRow(a.data(), b.data(), n + 2, y.data());
    for (int i = 0; i < n + 2; ++i) {
      const double ad = a[i];
      const double want = ad / (1.0 + std::exp(-ad)) * b[i];
      ASSERT_NEAR(y[i], want, 4e-7 * std::fabs(want) + 1e-30) << "a " << a[i] << " b " << b[i];
    }
  }
}

TEST_P(RowKernelsTest, CollectAtLeastFindsTheIdsInOrder) {
  for (int n : kLengths) {
    std::vector<float> row = RandomRow(n, 6 + n);
    for (int begin : {0, 3, n / 2}) {
      if (begin > n) continue;
      std::vector<int32_t> expected;
      for (int i = begin; i < n; ++i) {
        if (row[i] >= 2.0f) expected.push_back(i);
      }
      std::vector<int32_t> out(n - begin + kCollectSlack, -7);
      const int64_t count = CollectAtLeast(row.data(), begin, n, 2.0f, out.data());
      out.resize(count);
      EXPECT_EQ(out, expected) << n << " from " << begin;
    }
  }
  std::vector<float> equal(20, 1.5f);
  std::vector<int32_t> out(20 + kCollectSlack);
  EXPECT_EQ(CollectAtLeast(equal.data(), 0, 20, 1.5f, out.data()), 20);  // ties are included
  EXPECT_EQ(CollectAtLeast(equal.data(), 0, 20, std::nextafter(1.5f, kInf), out.data()), 0);
}

GLM4V_INSTANTIATE_SIMD_LEVELS(RowKernelsTest);

}  // namespace
}  // namespace glm4v::cpu
