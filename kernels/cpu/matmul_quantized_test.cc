// MatmulInt8 / MatmulInt4 at every SIMD level the CPU has against float64 over the dequantized
// weights: row counts 1-9, input widths with and without vector, block and group tails, a
// sub-range of output rows, overwrite and accumulate.
#include "kernels/cpu/matmul_fp8.h"
#include "kernels/cpu/matmul_quantized.h"
#include "kernels/cpu/matmul_quantized_vnni.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/matmul_bf16.h"
#include "common/dtype.h"

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
        if (format == WeightFormat::kFp8) {
          MatmulFp8(x.data(), m, q->values.data<uint8_t>(), q->scales.data<float>(), k, 2, 35,
                    accumulate, y.data(), ldy);
        } else if (format == WeightFormat::kInt8) {
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

// fp8: AVX2 + F16C widening (every level but scalar), the table at the scalar level.
TEST_P(MatmulQuantizedTest, Fp8MatchesFloat64OverTheDequantizedWeights) {
  CheckFormat(WeightFormat::kFp8);
}

GLM4V_INSTANTIATE_SIMD_LEVELS(MatmulQuantizedTest);

// The decode path (AVX-512 VNNI; x in int16 for int8 weights, int8 for int4) against float64
// over the dequantized weights and the dequantized activations (the same rounding of x):
// widths with block and group tails, 1-9 rows, sub-ranges, accumulate.
// The integer kernels of the decode path: AVX-512 VNNI for int8 and int4 weights where the CPU
// has it, and AVX2 (vpmaddubsw) for int4 on every AVX2 CPU.
enum class DotKernel { kVnni, kAvx2 };

void CheckIntegerDot(DotKernel kernel);

TEST(MatmulQuantizedVnniTest, MatchesFloat64OverDequantizedWeightsAndActivations) {
  if (!Int8ActivationProductsEnabled()) GTEST_SKIP() << "this CPU has no AVX-512 VNNI";
  CheckIntegerDot(DotKernel::kVnni);
}

TEST(MatmulQuantizedDotAvx2Test, Int4MatchesFloat64OverDequantizedWeightsAndActivations) {
  if (!Int4ActivationProductsEnabled()) GTEST_SKIP() << "this CPU has no AVX2";
  CheckIntegerDot(DotKernel::kAvx2);
}

void CheckIntegerDot(DotKernel kernel) {
  std::mt19937 rng(23);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const WeightFormat format : {WeightFormat::kInt8, WeightFormat::kInt4}) {
    if (kernel == DotKernel::kAvx2 && format == WeightFormat::kInt8) continue;
    for (const int64_t k : {1, 31, 64, 100, 128, 129, 200, 1000}) {
      for (const int64_t m : {1, 2, 3, 4, 5, 9}) {
        const int64_t n = 37;
        std::vector<float> x(m * k);
        for (float& v : x) v = dist(rng) * 3.0f;
        Tensor w = Tensor::Empty(DType::kF32, {n, k});
        for (int64_t i = 0; i < n * k; ++i) w.data<float>()[i] = dist(rng);
        auto q = QuantizeLinearWeight(w, format);
        ASSERT_TRUE(q.ok()) << q.status();
        const Tensor deq = DequantizeLinearWeight(*q);
        const bool int4 = format == WeightFormat::kInt4;
        const int64_t row_bytes = QuantizedRowBytes(k), blocks = row_bytes / kActivationBlock;
        // int4: x in int8 (int4 order for the kernel, natural for the reference); int8: int16.
        std::vector<int8_t> xq(m * row_bytes), natural(m * row_bytes);
        std::vector<int16_t> x16(m * row_bytes);
        std::vector<float> xs(m * blocks);
        std::vector<int32_t> sums(m * blocks);
        if (int4) {
          QuantizeActivations(x.data(), m, k, true, {xq.data(), xs.data(), sums.data()});
          QuantizeActivations(x.data(), m, k, false, {natural.data(), xs.data(), sums.data()});
        } else {
          QuantizeActivationsInt16(x.data(), m, k, x16.data(), xs.data());
        }
        for (const bool accumulate : {false, true}) {
          const int64_t ldy = n + 3;
          std::vector<float> y(m * ldy, 0.5f);
          const QuantizedRows rows{xq.data(), xs.data(), sums.data()};
          if (int4 && kernel == DotKernel::kAvx2) {
            MatmulInt4DotAvx2(rows, m, q->values.data<uint8_t>(), q->scales.data<float>(),
                              q->zeros.data<uint8_t>(), k, 2, 35, accumulate, y.data(), ldy);
          } else if (int4) {
            MatmulInt4Vnni(rows, m, q->values.data<uint8_t>(), q->scales.data<float>(),
                           q->zeros.data<uint8_t>(), k, 2, 35, accumulate, y.data(), ldy);
          } else {
            MatmulInt8Vnni(x16.data(), xs.data(), m,
                           reinterpret_cast<const int8_t*>(q->values.data<uint8_t>()),
                           q->scales.data<float>(), k, 2, 35, accumulate, y.data(), ldy);
          }
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < ldy; ++j) {
              if (j < 2 || j >= 35) {
                ASSERT_EQ(y[i * ldy + j], 0.5f) << "row outside the range was written";
                continue;
              }
              double want = accumulate ? 0.5 : 0.0, magnitude = std::abs(want);
              for (int64_t t = 0; t < k; ++t) {
                const double xv = double{xs[i * blocks + t / kActivationBlock]} *
                                  (int4 ? natural[i * row_bytes + t] : x16[i * row_bytes + t]);
                const double term = xv * deq.data<float>()[j * k + t];
                want += term;
                magnitude += std::abs(term);
              }
              ASSERT_NEAR(y[i * ldy + j], want, 1e-5 * (1 + magnitude))
                  << WeightFormatName(format) << " k " << k << " m " << m << " i " << i
                  << " j " << j;
            }
          }
        }
      }
    }
  }
}

// The opt-in bf16-activation path (GLM4V_CPU_MATMUL=bf16) with quantized weights: x and the
// dequantized weights rounded to bf16, products of bf16 pairs with f32 sums (through oneDNN
// from 128 rows, our own block below), against float64 of those rounded inputs.
TEST(MatmulQuantizedBf16Test, LinearQuantizedWithBf16ActivationsMatchesFloat64) {
  if (!CpuHasBf16Dot()) GTEST_SKIP() << "this CPU has no AVX-512 BF16";
  std::mt19937 rng(29);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  SetBf16ActivationMatmul(true);
  for (const WeightFormat format : {WeightFormat::kInt8, WeightFormat::kInt4}) {
    for (const int64_t m : {int64_t{32}, int64_t{131}}) {
     for (const int64_t k : {int64_t{256}, int64_t{300}}) {  // whole blocks, and a tail
      const int64_t n = 300;
      std::vector<float> x(m * k), bias(n);
      for (float& v : x) v = dist(rng);
      for (float& v : bias) v = dist(rng);
      Tensor w = Tensor::Empty(DType::kF32, {n, k});
      for (int64_t i = 0; i < n * k; ++i) w.data<float>()[i] = dist(rng);
      auto q = QuantizeLinearWeight(w, format);
      ASSERT_TRUE(q.ok());
      const Tensor deq = DequantizeLinearWeight(*q);
      std::vector<float> y(m * n);
      LinearQuantized(x.data(), *q, bias.data(), m, false, y.data());
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double want = bias[j], magnitude = std::abs(bias[j]);
          for (int64_t t = 0; t < k; ++t) {
            const double term = double{BF16ToF32(F32ToBF16(x[i * k + t]))} *
                                BF16ToF32(F32ToBF16(deq.data<float>()[j * k + t]));
            want += term;
            magnitude += std::abs(term);
          }
          ASSERT_NEAR(y[i * n + j], want, 1e-5 * (1 + magnitude))
              << WeightFormatName(format) << " m " << m << " k " << k << " i " << i << " j "
              << j;
        }
      }
     }
    }
  }
  SetBf16ActivationMatmul(false);
}

// The activations' rounding: every value within half a step (max |block| / 254) of x.
TEST(MatmulQuantizedVnniTest, ActivationsRoundWithinHalfAStep) {
  std::vector<float> x(300);
  for (size_t t = 0; t < x.size(); ++t) x[t] = std::sin(0.1f * t) * (t < 128 ? 1.0f : 50.0f);
  const int64_t row_bytes = QuantizedRowBytes(300);
  std::vector<int8_t> q(row_bytes);
  std::vector<float> scales(row_bytes / kActivationBlock);
  std::vector<int32_t> sums(scales.size());
  QuantizeActivations(x.data(), 1, 300, false, {q.data(), scales.data(), sums.data()});
  for (int64_t t = 0; t < row_bytes; ++t) {
    const float s = scales[t / kActivationBlock];
    const float want = t < 300 ? x[t] : 0.0f;
    ASSERT_LE(std::fabs(s * q[t] - want), 0.5f * s + 1e-6f) << t;
  }
  int32_t sum0 = 0;
  for (int t = 0; t < 128; ++t) sum0 += q[t];
  EXPECT_EQ(sums[0], sum0);
  std::vector<int16_t> q16(row_bytes);
  QuantizeActivationsInt16(x.data(), 1, 300, q16.data(), scales.data());
  for (int64_t t = 0; t < row_bytes; ++t) {
    const float s = scales[t / kActivationBlock];
    const float want = t < 300 ? x[t] : 0.0f;
    ASSERT_LE(std::fabs(s * q16[t] - want), 0.5f * s + 1e-6f) << t;
    ASSERT_LE(s, 50.0f / 32767.0f * 1.0001f);
  }
}

}  // namespace
}  // namespace glm4v::cpu
