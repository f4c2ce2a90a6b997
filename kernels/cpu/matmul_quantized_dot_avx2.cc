// AVX2 form of the int4 decode path of matmul_quantized_vnni.h, for CPUs without AVX-512 VNNI:
// vpmaddubsw multiplies the unsigned nibbles (0..15) by the signed int8 x in pairs into int16
// (at most 2 x 15 x 127 = 3,810, and four such sums stay below 2^15), vpmaddwd with ones widens
// to int32 once per 128-value group. Zero points come off through the block sums of x, as in
// the VNNI form. Blocks of J weight rows x I rows of x.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_quantized_vnni.h"
#include "kernels/linear_weight.h"

namespace glm4v {
namespace cpu {
namespace {

constexpr int64_t kBlock = kActivationBlock;

template <int I, int J>
GLM4V_AVX2 void Int4Block(const QuantizedRows& x, int64_t row_bytes, const uint8_t* packed,
                          const float* scales, const uint8_t* zeros, int64_t k, int64_t j,
                          bool accumulate, float* y, int64_t ldy) {
  const int64_t groups = Int4Groups(k), w_row = Int4RowBytes(k), x_blocks = row_bytes / kBlock;
  __m256 acc[I][J];
  float correction[I][J] = {};
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_setzero_ps();
  }
  const __m256i low = _mm256_set1_epi8(15);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < groups; ++g) {
    // One group = 128 values = 64 packed bytes; a row's last group may be shorter (16-byte
    // blocks): copied into zeros so no load crosses the row (or the matrix) end.
    const int64_t bytes = std::min<int64_t>(64, w_row - g * 64);
    __m256i lo0[J], lo1[J], hi0[J], hi1[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const uint8_t* src = packed + (j + jj) * w_row + g * 64;
      // Rows are short streams for the hardware prefetcher: fetch the next block of rows'
      // same lines (as the VNNI form).
      _mm_prefetch(reinterpret_cast<const char*>(src + J * w_row), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(src + J * w_row + 32), _MM_HINT_T0);
      alignas(32) uint8_t tail[64];
      if (bytes < 64) {
        std::memset(tail, 0, sizeof(tail));
        std::memcpy(tail, src, bytes);
        src = tail;
      }
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32));
      lo0[jj] = _mm256_and_si256(v0, low);
      lo1[jj] = _mm256_and_si256(v1, low);
      hi0[jj] = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
      hi1[jj] = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
    }
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      // x in int4 order: the 64 values facing the low nibbles, then the 64 facing the high.
      const int8_t* xb = x.values + i * row_bytes + g * kBlock;
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 32));
      const __m256i x2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 64));
      const __m256i x3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 96));
      const float xs = x.scales[i * x_blocks + g];
      const float xsum = static_cast<float>(x.sums[i * x_blocks + g]);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) {
        __m256i s16 = _mm256_maddubs_epi16(lo0[jj], x0);
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo1[jj], x1));
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi0[jj], x2));
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi1[jj], x3));
        const __m256i dot = _mm256_madd_epi16(s16, ones);
        const float ws = scales[(j + jj) * groups + g];
        acc[i][jj] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(ws * xs), acc[i][jj]);
        correction[i][jj] += ws * xs * xsum * static_cast<float>(zeros[(j + jj) * groups + g]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float v = HorizontalSumAvx2(acc[i][jj]) - correction[i][jj];
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + v : v;
    }
  }
}

}  // namespace

GLM4V_AVX2 void MatmulInt4DotAvx2(const QuantizedRows& x, int64_t m, const uint8_t* packed,
                                  const float* scales, const uint8_t* zeros, int64_t k,
                                  int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                                  int64_t ldy) {
  const int64_t row_bytes = QuantizedRowBytes(k), blocks = row_bytes / kBlock;
  ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
    constexpr int I = decltype(rows)::value;
    const QuantizedRows xi{x.values + i * row_bytes, x.scales + i * blocks, x.sums + i * blocks};
    int64_t j = j_begin;
    if (I == 1) {
      for (; j + 4 <= j_end; j += 4) {
        Int4Block<1, 4>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
      }
    }
    for (; j + 2 <= j_end; j += 2) {
      Int4Block<I, 2>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
    }
    for (; j < j_end; ++j) {
      Int4Block<I, 1>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
