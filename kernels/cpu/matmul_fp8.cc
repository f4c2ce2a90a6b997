#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include "kernels/cpu/matmul_fp8.h"

#include <array>

#include "kernels/cpu/simd_level.h"
#include "kernels/fp8_e4m3.h"

#define GLM4V_AVX2_F16C __attribute__((target("avx2,fma,f16c")))

namespace glm4v {
namespace cpu {
namespace {

const std::array<float, 256>& Fp8Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[b] = E4M3ToF32(static_cast<uint8_t>(b));
    return t;
  }();
  return table;
}

constexpr int kLanes = 8;

// Eight e4m3 bytes as f32, 2^-8 times their values (kernels/fp8_e4m3.h).
GLM4V_AVX2_F16C inline __m256 WidenFp8Scaled(const uint8_t* q) {
  const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)));
  const __m128i sign = _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8);
  const __m128i rest = _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7f)), 7);
  return _mm256_cvtph_ps(_mm_or_si128(sign, rest));
}

// An I x J register block: I rows of x against J weight rows.
template <int I, int J>
GLM4V_AVX2_F16C void Fp8Block(const float* x, const uint8_t* q, const float* scale, int64_t k,
                              int64_t j, bool accumulate, float* y, int64_t ldy) {
  const std::array<float, 256>& table = Fp8Table();
  __m256 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_setzero_ps();
  }
  const uint8_t* qj = q + j * k;
  const int64_t full = k / kLanes * kLanes;
  for (int64_t kk = 0; kk < full; kk += kLanes) {
    __m256 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = WidenFp8Scaled(qj + jj * k + kk);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * k + kk);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_fmadd_ps(xv, wv[jj], acc[i][jj]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      float tail = 0.0f;
      for (int64_t t = full; t < k; ++t) tail += x[i * k + t] * table[qj[jj * k + t]];
      const float sum = HorizontalSumAvx2(acc[i][jj]) * kE4M3HalfScale + tail;
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + scale[j + jj] * sum : scale[j + jj] * sum;
    }
  }
}

template <int I>
GLM4V_AVX2_F16C void Fp8Rows(const float* x, const uint8_t* q, const float* scale, int64_t k,
                             int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                             int64_t ldy) {
  int64_t j = j_begin;
  for (; j + 4 <= j_end; j += 4) Fp8Block<I, 4>(x, q, scale, k, j, accumulate, y, ldy);
  for (; j < j_end; ++j) Fp8Block<I, 1>(x, q, scale, k, j, accumulate, y, ldy);
}

GLM4V_AVX2_F16C void MatmulFp8Avx2(const float* x, int64_t m, const uint8_t* q,
                                   const float* scale, int64_t k, int64_t j_begin, int64_t j_end,
                                   bool accumulate, float* y, int64_t ldy) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    Fp8Rows<4>(x + i * k, q, scale, k, j_begin, j_end, accumulate, y + i * ldy, ldy);
  }
  for (; i < m; ++i) {
    Fp8Rows<1>(x + i * k, q, scale, k, j_begin, j_end, accumulate, y + i * ldy, ldy);
  }
}

bool HasF16c() {
  static const bool has = __builtin_cpu_supports("f16c");
  return has;
}

}  // namespace

void MatmulFp8Scalar(const float* x, int64_t m, const uint8_t* q, const float* scale, int64_t k,
                     int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  const std::array<float, 256>& table = Fp8Table();
  for (int64_t j = j_begin; j < j_end; ++j) {
    const uint8_t* row = q + j * k;
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int64_t t = 0; t < k; ++t) s += x[i * k + t] * table[row[t]];
      float& out = y[i * ldy + j];
      out = accumulate ? out + scale[j] * s : scale[j] * s;
    }
  }
}

void MatmulFp8(const float* x, int64_t m, const uint8_t* q, const float* scale, int64_t k,
               int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  // The AVX2 form serves AVX-512 machines too (fp8 on the CPU is a checking path).
  if (ActiveSimdLevel() != SimdLevel::kScalar && HasF16c()) {
    MatmulFp8Avx2(x, m, q, scale, k, j_begin, j_end, accumulate, y, ldy);
    return;
  }
  MatmulFp8Scalar(x, m, q, scale, k, j_begin, j_end, accumulate, y, ldy);
}

void DequantizeFp8Row(const uint8_t* q, float scale, int64_t k, float* out) {
  const std::array<float, 256>& table = Fp8Table();
  for (int64_t t = 0; t < k; ++t) out[t] = scale * table[q[t]];
}

}  // namespace cpu
}  // namespace glm4v
