// MatmulInt8 / MatmulInt4 at every SIMD level the CPU has against float64 over the dequantized
// weights: row counts 1-9, input widths with and without vector, block and group tails, a
// sub-range of output rows, overwrite and accumulate.
#include "kernels/cpu/matmul_quantized.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/simd_level_testing.h"
#include "kernels/linear_weight.h"

namespace glm4v::cpu {
namespace {

class MatmulQuantizedTest : public SimdLevelTest {};

void CheckFormat(WeightFormat format) {
  std::mt19937 rng(21);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const int64_t k : {1, 7, 16, 31, 32, 33, 100, 128, 200, 1000}) {
    for (const int64_t m : {1, 2, 3, 4, 5, 9}) {
      const int64_t n = 37;
      std::vector<float> x(m * k);
      for (float& v : x) v = dist(rng);
      Tensor w = Tensor::Empty(DType::kF32, {n, k});
      for (int64_t i = 0; i < n * k; ++i) w.data<float>()[i] = dist(rng) * (1 + i % 3);
      auto q = QuantizeLinearWeight(w, format);
      ASSERT_TRUE(q.ok()) << q.status();
      const Tensor deq = DequantizeLinearWeight(*q);
      for (const bool accumulate : {false, true}) {
        const int64_t ldy = n + 3;
        std::vector<float> y(m * ldy, 0.5f);
        if (format == WeightFormat::kInt8) {
          MatmulInt8(x.data(), m, reinterpret_cast<const int8_t*>(q->values.data<uint8_t>()),
                     q->scales.data<float>(), k, 2, 35, accumulate, y.data(), ldy);
        } else {
          MatmulInt4(x.data(), m, q->values.data<uint8_t>(), q->scales.data<float>(),
                     q->zeros.data<uint8_t>(), k, 2, 35, accumulate, y.data(), ldy);
        }
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < ldy; ++j) {
            if (j < 2 || j >= 35) {
              ASSERT_EQ(y[i * ldy + j], 0.5f) << "row outside the range was written";
              continue;
            }
            double want = accumulate ? 0.5 : 0.0, magnitude = std::abs(want);
            for (int64_t t = 0; t < k; ++t) {
              const double term = double{x[i * k + t]} * deq.data<float>()[j * k + t];
              want += term;
              magnitude += std::abs(term);
            }
            ASSERT_NEAR(y[i * ldy + j], want, 1e-5 * (1 + magnitude))
                << WeightFormatName(format) << " k " << k << " m " << m << " i " << i << " j "
                << j << " accumulate " << accumulate;
          }
        }
      }
    }
  }
}

TEST_P(MatmulQuantizedTest, Int8MatchesFloat64OverTheDequantizedWeights) {
  CheckFormat(WeightFormat::kInt8);
}

TEST_P(MatmulQuantizedTest, Int4MatchesFloat64OverTheDequantizedWeights) {
  CheckFormat(WeightFormat::kInt4);
}

GLM4V_INSTANTIATE_SIMD_LEVELS(MatmulQuantizedTest);

}  // namespace
}  // namespace glm4v::cpu
