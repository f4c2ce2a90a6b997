// MatmulBf16 at every SIMD level the CPU has against float64 over the same bf16 weights: row
// counts 1-16, column counts with and without a vector tail, a sub-range of output rows,
// overwrite and accumulate.
#include "kernels/cpu/matmul_bf16.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/onednn_matmul.h"
#include "kernels/cpu/simd_level_testing.h"

namespace glm4v::cpu {
namespace {

class MatmulBf16Test : public SimdLevelTest {};

TEST_P(MatmulBf16Test, MatchesFloat64OverTheSameWeights) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const int64_t k : {1, 7, 16, 33, 4096}) {
    for (const int64_t m : {1, 2, 3, 4, 6, 9, 16}) {
      const int64_t n = 37;
      std::vector<float> x(m * k);
      for (float& v : x) v = dist(rng);
      std::vector<uint16_t> w(n * k);
      for (uint16_t& v : w) v = F32ToBF16(dist(rng));
      for (const bool accumulate : {false, true}) {
        const int64_t ldy = n + 3;
        std::vector<float> y(m * ldy, 0.5f);
        MatmulBf16(x.data(), m, w.data(), k, 2, 35, accumulate, y.data(), ldy);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < ldy; ++j) {
            if (j < 2 || j >= 35) {
              ASSERT_EQ(y[i * ldy + j], 0.5f) << "row outside the range was written";
              continue;
            }
            double want = accumulate ? 0.5 : 0.0;
            double magnitude = 0;
            for (int64_t t = 0; t < k; ++t) {
              const double term = double{x[i * k + t]} * BF16ToF32(w[j * k + t]);
              want += term;
              magnitude += std::abs(term);
            }
            ASSERT_NEAR(y[i * ldy + j], want, 1e-5 * (1 + magnitude))
                << "k " << k << " m " << m << " i " << i << " j " << j;
          }
        }
      }
    }
  }
}

GLM4V_INSTANTIATE_SIMD_LEVELS(MatmulBf16Test);

// The opt-in bf16-activation path through Linear: x rounded to bf16, products of bf16 pairs,
// f32 sums; small products stay on the exact path. Once with our own AVX-512 BF16 block, once
// through oneDNN.
class MatmulBf16DotTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!CpuHasBf16Dot()) GTEST_SKIP() << "this CPU has no AVX-512 BF16";
    SetOneDnnMatmul(GetParam());
    if (GetParam() && !OneDnnMatmulEnabled()) {
      GTEST_SKIP() << "oneDNN has no JIT bf16 matmul for this CPU";
    }
  }
  void TearDown() override { SetOneDnnMatmul(true); }
};

TEST_P(MatmulBf16DotTest, LinearWithBf16ActivationsMatchesFloat64OfRoundedInputs) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  SetBf16ActivationMatmul(true);
  for (const int64_t k : {5, 64, 100, 4096}) {
    // 131 rows: oneDNN's smallest; 1,100: two of its row blocks.
    for (const int64_t m : {int64_t{1}, kBf16ActivationMinRows, int64_t{131}, int64_t{1100}}) {
      if (m > 1000 && k > 100) continue;
      const int64_t n = 21;
      std::vector<float> x(m * k), bias(n);
      for (float& v : x) v = dist(rng);
      for (float& v : bias) v = dist(rng);
      std::vector<uint16_t> w(n * k);
      for (uint16_t& v : w) v = F32ToBF16(dist(rng));
      std::vector<float> y(m * n);
      Linear(x.data(), w.data(), DType::kBF16, bias.data(), m, n, k, false, y.data());
      const bool rounded = m >= kBf16ActivationMinRows;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double want = bias[j], magnitude = std::abs(bias[j]);
          for (int64_t t = 0; t < k; ++t) {
            const float xv = rounded ? BF16ToF32(F32ToBF16(x[i * k + t])) : x[i * k + t];
            const double term = double{xv} * BF16ToF32(w[j * k + t]);
            want += term;
            magnitude += std::abs(term);
          }
          ASSERT_NEAR(y[i * n + j], want, 1e-5 * (1 + magnitude))
              << "k " << k << " m " << m << " i " << i << " j " << j;
        }
      }
    }
  }
  SetBf16ActivationMatmul(false);
}

INSTANTIATE_TEST_SUITE_P(Kernels, MatmulBf16DotTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "OneDnn" : "Own");
                         });

// The oneDNN call itself: output rows ldy apart (the columns past n untouched), overwrite and
// accumulate, against float64 of the bf16 inputs.
TEST(OneDnnMatmulTest, WritesOnlyItsColumnsAndAccumulates) {
  if (!OneDnnMatmulEnabled()) GTEST_SKIP() << "oneDNN has no JIT bf16 matmul for this CPU";
  std::mt19937 rng(13);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t m = 45, k = 300, n = 70, ldy = 77;
  std::vector<uint16_t> x(m * k), w(n * k);
  for (uint16_t& v : x) v = F32ToBF16(dist(rng));
  for (uint16_t& v : w) v = F32ToBF16(dist(rng));
  for (const bool accumulate : {false, true}) {
    std::vector<float> y(m * ldy, 0.25f);
    ASSERT_TRUE(OneDnnMatmulBf16(x.data(), m, w.data(), k, n, accumulate, y.data(), ldy));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < ldy; ++j) {
        if (j >= n) {
          ASSERT_EQ(y[i * ldy + j], 0.25f) << "column past n was written";
          continue;
        }
        double want = accumulate ? 0.25 : 0.0, magnitude = std::abs(want);
        for (int64_t t = 0; t < k; ++t) {
          const double term = double{BF16ToF32(x[i * k + t])} * BF16ToF32(w[j * k + t]);
          want += term;
          magnitude += std::abs(term);
        }
        ASSERT_NEAR(y[i * ldy + j], want, 1e-5 * (1 + magnitude)) << i << " " << j;
      }
    }
  }
}

}  // namespace
}  // namespace glm4v::cpu
