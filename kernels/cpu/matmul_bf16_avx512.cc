// AVX-512 form of MatmulBf16: blocks of 4 weight rows x up to 4 rows of x (16 accumulators); per
// 16 columns one load of each x row and of each weight row (widened by a 16-bit shift), 16
// FMAs. Compiled with a function-level target; only called when CPUID has AVX-512.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <cstdint>

#include "kernels/cpu/matmul_bf16_impl.h"

namespace glm4v {
namespace cpu {
namespace avx512 {
namespace {

constexpr int kLanes = 16;

GLM4V_AVX512 inline __m512 Widen(const uint16_t* w) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

GLM4V_AVX512 inline __m512 WidenMasked(const uint16_t* w, __mmask16 mask) {
  const __m256i bits = _mm256_maskz_loadu_epi16(mask, w);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

// Weight rows [j, j + J) against x rows [0, I).
template <int I, int J>
GLM4V_AVX512 void Block(const float* x, const uint16_t* w, int64_t k, int64_t j, bool accumulate,
                        float* y, int64_t ldy) {
  __m512 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  const uint16_t* wj = w + j * k;
  int64_t kk = 0;
  for (; kk + kLanes <= k; kk += kLanes) {
    __m512 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = Widen(wj + jj * k + kk);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512 xv = _mm512_loadu_ps(x + i * k + kk);
    #pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_fmadd_ps(xv, wv[jj], acc[i][jj]);
    }
  }
  if (kk < k) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1u);
    __m512 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = WidenMasked(wj + jj * k + kk, mask);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k + kk);
    #pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_fmadd_ps(xv, wv[jj], acc[i][jj]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float sum = _mm512_reduce_add_ps(acc[i][jj]);
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + sum : sum;
    }
  }
}

// Weight rows [j, j + J) against every row of x, 4 at a time: the J weight rows come from
// memory once and from the cache for each further group of x rows.
template <int J>
GLM4V_AVX512 void WeightBlock(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j,
                         bool accumulate, float* y, int64_t ldy) {
  ForEachRowBlockOf4(m, [&](auto block_rows, int64_t i) {
    Block<decltype(block_rows)::value, J>(x + i * k, w, k, j, accumulate, y + i * ldy, ldy);
  });
}

}  // namespace

GLM4V_AVX512 void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k,
                           int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                           int64_t ldy) {
  int64_t j = j_begin;
  if (m == 1) {
    // One row of x: 8 weight rows side by side keep more of the memory system busy.
    for (; j + 8 <= j_end; j += 8) Block<1, 8>(x, w, k, j, accumulate, y, ldy);
  }
  for (; j + 4 <= j_end; j += 4) WeightBlock<4>(x, m, w, k, j, accumulate, y, ldy);
  for (; j < j_end; ++j) WeightBlock<1>(x, m, w, k, j, accumulate, y, ldy);
}

}  // namespace avx512
}  // namespace cpu
}  // namespace glm4v
