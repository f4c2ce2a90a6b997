// AVX-512 forms of the quantized products: blocks of 4 weight rows x up to 4 rows of x; each
// weight vector is dequantized once (int8: sign-extend + convert; int4: one 16-byte load gives
// 32 values, low and high nibbles, minus the group's zero point, times its scale) and used for
// every row of x in the block. Column tails (k not a multiple of the vector) are scalar.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/matmul_quantized_impl.h"
#include "kernels/linear_weight.h"

namespace glm4v {
namespace cpu {
namespace avx512 {
namespace {

constexpr int kLanes = 16;

GLM4V_AVX512 inline __m512 WidenInt8(const int8_t* q) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
}

template <int I, int J>
GLM4V_AVX512 void Int8Block(const float* x, const int8_t* q, const float* scale, int64_t k,
                            int64_t j, bool accumulate, float* y, int64_t ldy) {
  __m512 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  const int8_t* qj = q + j * k;
  const int64_t full = k / kLanes * kLanes;
  for (int64_t kk = 0; kk < full; kk += kLanes) {
    __m512 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = WidenInt8(qj + jj * k + kk);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * k + kk);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_fmadd_ps(xv, wv[jj], acc[i][jj]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float sum = _mm512_reduce_add_ps(acc[i][jj]) + Int8Dot(x + i * k, qj + jj * k, full, k);
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + scale[j + jj] * sum : scale[j + jj] * sum;
    }
  }
}

template <int I, int J>
GLM4V_AVX512 void Int4Block(const float* x, const uint8_t* packed, const float* scales,
                            const uint8_t* zeros, int64_t k, int64_t j, bool accumulate, float* y,
                            int64_t ldy) {
  const int64_t groups = Int4Groups(k), row_bytes = Int4RowBytes(k);
  __m512 acc[I][J];
  float tail[I][J] = {};
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  const __m512i low_bits = _mm512_set1_epi32(15);
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t t0 = g * kInt4GroupSize, t1 = std::min(k, t0 + kInt4GroupSize);
    const int64_t full = t0 + (t1 - t0) / kInt4BlockValues * kInt4BlockValues;
    __m512 scale[J], zero[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      scale[jj] = _mm512_set1_ps(scales[(j + jj) * groups + g]);
      zero[jj] = _mm512_set1_ps(static_cast<float>(zeros[(j + jj) * groups + g]));
    }
    for (int64_t kk = t0; kk < full; kk += kInt4BlockValues) {
      __m512 lo[J], hi[J];
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) {
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(packed + (j + jj) * row_bytes + kk / 2)));
        lo[jj] = _mm512_mul_ps(
            _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, low_bits)), zero[jj]), scale[jj]);
        hi[jj] = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4)), zero[jj]),
                               scale[jj]);
      }
#pragma GCC unroll 16
      for (int i = 0; i < I; ++i) {
        const __m512 x0 = _mm512_loadu_ps(x + i * k + kk);
        const __m512 x1 = _mm512_loadu_ps(x + i * k + kk + kLanes);
#pragma GCC unroll 16
        for (int jj = 0; jj < J; ++jj) {
          acc[i][jj] = _mm512_fmadd_ps(x0, lo[jj], acc[i][jj]);
          acc[i][jj] = _mm512_fmadd_ps(x1, hi[jj], acc[i][jj]);
        }
      }
    }
    if (full < t1) {
      for (int i = 0; i < I; ++i) {
        for (int jj = 0; jj < J; ++jj) {
          tail[i][jj] += Int4GroupDot(x + i * k, packed + (j + jj) * row_bytes,
                                      scales[(j + jj) * groups + g], zeros[(j + jj) * groups + g],
                                      full, t1);
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float sum = _mm512_reduce_add_ps(acc[i][jj]) + tail[i][jj];
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + sum : sum;
    }
  }
}

}  // namespace

GLM4V_AVX512 void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale,
                             int64_t k, int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                             int64_t ldy) {
  int64_t j = j_begin;
  if (m == 1) {
    for (; j + 8 <= j_end; j += 8) Int8Block<1, 8>(x, q, scale, k, j, accumulate, y, ldy);
  }
  for (; j + 4 <= j_end; j += 4) {
    ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
      Int8Block<decltype(rows)::value, 4>(x + i * k, q, scale, k, j, accumulate, y + i * ldy,
                                          ldy);
    });
  }
  for (; j < j_end; ++j) {
    ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
      Int8Block<decltype(rows)::value, 1>(x + i * k, q, scale, k, j, accumulate, y + i * ldy,
                                          ldy);
    });
  }
}

GLM4V_AVX512 void MatmulInt4(const float* x, int64_t m, const uint8_t* packed,
                             const float* scales, const uint8_t* zeros, int64_t k,
                             int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                             int64_t ldy) {
  int64_t j = j_begin;
  for (; j + 4 <= j_end; j += 4) {
    ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
      Int4Block<decltype(rows)::value, 4>(x + i * k, packed, scales, zeros, k, j, accumulate,
                                          y + i * ldy, ldy);
    });
  }
  for (; j < j_end; ++j) {
    ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
      Int4Block<decltype(rows)::value, 1>(x + i * k, packed, scales, zeros, k, j, accumulate,
                                          y + i * ldy, ldy);
    });
  }
}

}  // namespace avx512
}  // namespace cpu
}  // namespace glm4v
