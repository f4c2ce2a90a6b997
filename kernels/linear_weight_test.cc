// The load-time quantizers: error near what the format allows for Gaussian weights (the shape of
// random and, to first order, trained weights), exact zeros, the packed int4 layout, odd widths,
// and the rejection of non-finite weights.
#include "kernels/linear_weight.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/fp8_e4m3.h"

namespace glm4v {
namespace {

Tensor GaussianRows(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  Tensor t = Tensor::Empty(DType::kF32, {rows, cols});
  for (int64_t i = 0; i < rows * cols; ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// ||w - dequantized|| / ||w|| over the whole matrix.
double RelativeError(const Tensor& w, WeightFormat format) {
  auto q = QuantizeLinearWeight(w, format);
  EXPECT_TRUE(q.ok()) << q.status();
  const Tensor d = DequantizeLinearWeight(*q);
  double err = 0, norm = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = w.data<float>()[i], b = d.data<float>()[i];
    err += (a - b) * (a - b);
    norm += a * a;
  }
  return std::sqrt(err / norm);
}

// Uniform quantizers of a Gaussian: int8 per row (step = max|w| / 127, max ~3.9 sigma over 4096
// values) leaves ~0.009 of the norm; int4 over groups of 128 with 16 levels ~0.095 at best (the
// optimal 16-level uniform quantizer of a Gaussian: MSE 0.0095 sigma^2).
TEST(LinearWeightTest, QuantizationErrorIsNearWhatTheFormatAllows) {
  const Tensor w = GaussianRows(64, 4096, 1);
  const double e8 = RelativeError(w, WeightFormat::kInt8);
  const double e4 = RelativeError(w, WeightFormat::kInt4);
  const double e_fp8 = RelativeError(w, WeightFormat::kFp8);
  std::printf("relative error: int8 %.5f, int4 %.5f, fp8 %.5f\n", e8, e4, e_fp8);
  EXPECT_LT(e8, 0.0105);
  // e4m3 keeps 3 mantissa bits: relative rounding error uniform in +-1/16 of each value's
  // binade, RMS ~0.02-0.025 of the norm whatever the row's range.
  EXPECT_LT(e_fp8, 0.03);
  EXPECT_GT(e_fp8, 0.01);
  EXPECT_LT(e4, 0.105);
  EXPECT_GT(e4, 0.08);  // below the bound of any 16-level code: the test itself is broken
}

TEST(LinearWeightTest, ZerosStayExactAndTheInt4LayoutIsPackedInBlocksOf32) {
  for (const int64_t in : {1, 31, 32, 33, 100, 128, 129, 300}) {
    Tensor w = GaussianRows(3, in, 2 + static_cast<uint32_t>(in));
    for (int64_t t = 0; t < in; t += 3) w.data<float>()[t] = 0.0f;
    for (int64_t t = 0; t < in; ++t) w.data<float>()[2 * in + t] = 0.0f;  // an all-zero row
    for (const WeightFormat format :
         {WeightFormat::kInt8, WeightFormat::kInt4, WeightFormat::kFp8}) {
      auto q = QuantizeLinearWeight(w, format);
      ASSERT_TRUE(q.ok()) << q.status();
      EXPECT_EQ(q->in_features(), in);
      EXPECT_EQ(q->out_features(), 3);
      const Tensor d = DequantizeLinearWeight(*q);
      for (int64_t r = 0; r < 3; ++r) {
        for (int64_t t = 0; t < in; ++t) {
          if (w.data<float>()[r * in + t] == 0.0f) {
            ASSERT_EQ(d.data<float>()[r * in + t], 0.0f) << in << " " << r << " " << t;
          }
        }
      }
      if (format == WeightFormat::kInt4) {
        EXPECT_EQ(q->values.dim(1), (in + 31) / 32 * 16);
        EXPECT_EQ(q->scales.dim(1), (in + 127) / 128);
      }
    }
  }
  // The nibble order: value 16 + b of a block in the high half of byte b.
  Tensor ramp = Tensor::Empty(DType::kF32, {1, 32});
  for (int t = 0; t < 32; ++t) ramp.data<float>()[t] = static_cast<float>(t % 16);
  auto q = QuantizeLinearWeight(ramp, WeightFormat::kInt4);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->zeros.data<uint8_t>()[0], 0);
  for (int b = 0; b < 16; ++b) {
    const uint8_t byte = q->values.data<uint8_t>()[b];
    EXPECT_EQ(byte & 15, byte >> 4) << b;  // values b and 16 + b are equal in the ramp
  }
}

// Every e4m3 code round-trips; encoding rounds to the nearest code (ties to even) and saturates
// at 448; the half trick of the vector kernels gives every code exactly.
TEST(LinearWeightTest, Fp8E4M3CodesRoundTripAndRoundToNearest) {
  std::vector<float> finite;
  for (int b = 0; b < 256; ++b) {
    const uint8_t bits = static_cast<uint8_t>(b);
    const float v = E4M3ToF32(bits);
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << b;
      continue;
    }
    if (b != 0x80) EXPECT_EQ(F32ToE4M3(v), bits) << b << " " << v;  // -0 encodes as 0x80 too
    // Half of 2^-8 times the value, widened: the value exactly.
    uint16_t h = E4M3ToScaledHalfBits(bits);
    const int e = (h >> 10) & 31, m = h & 1023;
    const double half = (e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25)) *
                        ((h & 0x8000) ? -1 : 1);
    EXPECT_EQ(half * kE4M3HalfScale, v) << b;
    if (v >= 0) finite.push_back(v);
  }
  EXPECT_EQ(E4M3ToF32(0x7e), 448.0f);
  EXPECT_EQ(E4M3ToF32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(F32ToE4M3(1000.0f), 0x7e);
  EXPECT_EQ(F32ToE4M3(-1000.0f), 0xfe);
  std::sort(finite.begin(), finite.end());
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(0.0f, 460.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = i < 10000 ? u(rng) : u(rng) / 4096.0f;
    const float got = E4M3ToF32(F32ToE4M3(v));
    float best = finite[0];
    for (float c : finite) {
      if (std::fabs(c - v) < std::fabs(best - v)) best = c;
    }
    ASSERT_EQ(std::fabs(got - v), std::fabs(best - v)) << v;
  }
}

TEST(LinearWeightTest, RejectsNonFiniteWeightsAndNonMatrices) {
  Tensor w = GaussianRows(2, 8, 3);
  w.data<float>()[9] = INFINITY;
  EXPECT_EQ(QuantizeLinearWeight(w, WeightFormat::kInt4).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeLinearWeight(w, WeightFormat::kFp8).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeLinearWeight(Tensor::Empty(DType::kF32, {8}), WeightFormat::kInt8)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeLinearWeight(Tensor::FromI32({1, 2}, {1, 2}), WeightFormat::kInt8)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
