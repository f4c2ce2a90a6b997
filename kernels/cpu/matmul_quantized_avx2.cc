// AVX2 + FMA forms of the quantized products (8 lanes): blocks of up to 4 weight rows (int8) or
// 2 (int4: four dequantized vectors per row and 32 values) x up to 4 rows of x. Column tails are
// scalar.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/matmul_quantized_impl.h"
#include "kernels/linear_weight.h"

namespace glm4v {
namespace cpu {
namespace avx2 {
namespace {

constexpr int kLanes = 8;

GLM4V_AVX2 inline __m256 WidenInt8(const int8_t* q) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
}

template <int I, int J>
GLM4V_AVX2 void Int8Block(const float* x, const int8_t* q, const float* scale, int64_t k,
                          int64_t j, bool accumulate, float* y, int64_t ldy) {
  __m256 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_setzero_ps();
  }
  const int8_t* qj = q + j * k;
  const int64_t full = k / kLanes * kLanes;
  for (int64_t kk = 0; kk < full; kk += kLanes) {
    __m256 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = WidenInt8(qj + jj * k + kk);
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
      const float sum = HorizontalSumAvx2(acc[i][jj]) + Int8Dot(x + i * k, qj + jj * k, full, k);
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + scale[j + jj] * sum : scale[j + jj] * sum;
    }
  }
}

// Eight packed bytes of a 32-value block: their low nibbles are 8 consecutive values, their
// high nibbles the 8 values 16 further on; dequantized.
GLM4V_AVX2 inline void DequantizeInt4Half(const uint8_t* bytes, __m256 zero, __m256 scale,
                                          __m256* lo, __m256* hi) {
  const __m256i v =
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
  *lo = _mm256_mul_ps(
      _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15))), zero), scale);
  *hi = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), zero), scale);
}

template <int I, int J>
GLM4V_AVX2 void Int4Block(const float* x, const uint8_t* packed, const float* scales,
                          const uint8_t* zeros, int64_t k, int64_t j, bool accumulate, float* y,
                          int64_t ldy) {
  const int64_t groups = Int4Groups(k), row_bytes = Int4RowBytes(k);
  __m256 acc[I][J];
  float tail[I][J] = {};
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t t0 = g * kInt4GroupSize, t1 = std::min(k, t0 + kInt4GroupSize);
    const int64_t full = t0 + (t1 - t0) / kInt4BlockValues * kInt4BlockValues;
    __m256 scale[J], zero[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      scale[jj] = _mm256_set1_ps(scales[(j + jj) * groups + g]);
      zero[jj] = _mm256_set1_ps(static_cast<float>(zeros[(j + jj) * groups + g]));
    }
    for (int64_t kk = t0; kk < full; kk += kInt4BlockValues) {
      // Halves: bytes 0-7 give values [0, 8) and [16, 24), bytes 8-15 [8, 16) and [24, 32).
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        __m256 lo[J], hi[J];
#pragma GCC unroll 16
        for (int jj = 0; jj < J; ++jj) {
          DequantizeInt4Half(packed + (j + jj) * row_bytes + kk / 2 + half * 8, zero[jj],
                             scale[jj], &lo[jj], &hi[jj]);
        }
#pragma GCC unroll 16
        for (int i = 0; i < I; ++i) {
          const __m256 x0 = _mm256_loadu_ps(x + i * k + kk + half * kLanes);
          const __m256 x1 = _mm256_loadu_ps(x + i * k + kk + 16 + half * kLanes);
#pragma GCC unroll 16
          for (int jj = 0; jj < J; ++jj) {
            acc[i][jj] = _mm256_fmadd_ps(x0, lo[jj], acc[i][jj]);
            acc[i][jj] = _mm256_fmadd_ps(x1, hi[jj], acc[i][jj]);
          }
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
      const float sum = HorizontalSumAvx2(acc[i][jj]) + tail[i][jj];
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + sum : sum;
    }
  }
}

}  // namespace

GLM4V_AVX2 void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale,
                           int64_t k, int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                           int64_t ldy) {
  int64_t j = j_begin;
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

GLM4V_AVX2 void MatmulInt4(const float* x, int64_t m, const uint8_t* packed, const float* scales,
                           const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end,
                           bool accumulate, float* y, int64_t ldy) {
  int64_t j = j_begin;
  for (; j + 2 <= j_end; j += 2) {
    ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
      Int4Block<decltype(rows)::value, 2>(x + i * k, packed, scales, zeros, k, j, accumulate,
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

}  // namespace avx2
}  // namespace cpu
}  // namespace glm4v
