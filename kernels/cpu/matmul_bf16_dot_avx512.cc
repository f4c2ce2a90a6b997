// MatmulBf16Dot: bf16 x bf16 pairs with f32 sums (AVX-512 BF16 `vdpbf16ps`): per 32 columns
// one load of each x row and each weight row, no widening, one instruction per (row, weight
// row) pair. Register blocks of 4 weight rows x 4 rows of x. Compiled with a function-level
// target; only called when CPUID has AVX-512 BF16 (CpuHasBf16Dot).
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <cstdint>

#include "kernels/cpu/matmul_bf16.h"

#define GLM4V_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

namespace glm4v {
namespace cpu {
namespace {

constexpr int kPairs = 32;  // bf16 values per 512-bit vector

GLM4V_AVX512_BF16 inline __m512bh Load(const uint16_t* p) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}

GLM4V_AVX512_BF16 inline __m512bh LoadMasked(const uint16_t* p, __mmask32 mask) {
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, p));
}

template <int I, int J>
GLM4V_AVX512_BF16 void Block(const uint16_t* x, const uint16_t* w, int64_t k, int64_t j,
                             bool accumulate, float* y, int64_t ldy) {
  __m512 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  const uint16_t* wj = w + j * k;
  int64_t kk = 0;
  for (; kk + kPairs <= k; kk += kPairs) {
    __m512bh wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = Load(wj + jj * k + kk);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512bh xv = Load(x + i * k + kk);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_dpbf16_ps(acc[i][jj], xv, wv[jj]);
    }
  }
  if (kk < k) {
    const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << (k - kk)) - 1u);
    __m512bh wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = LoadMasked(wj + jj * k + kk, mask);
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512bh xv = LoadMasked(x + i * k + kk, mask);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_dpbf16_ps(acc[i][jj], xv, wv[jj]);
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

template <int J>
GLM4V_AVX512_BF16 void WeightBlock(const uint16_t* x, int64_t m, const uint16_t* w, int64_t k,
                                   int64_t j, bool accumulate, float* y, int64_t ldy) {
  ForEachRowBlockOf4(m, [&](auto block_rows, int64_t i) {
    Block<decltype(block_rows)::value, J>(x + i * k, w, k, j, accumulate, y + i * ldy, ldy);
  });
}

}  // namespace

GLM4V_AVX512_BF16 void MatmulBf16Dot(const uint16_t* x, int64_t m, const uint16_t* w, int64_t k,
                                     int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                                     int64_t ldy) {
  int64_t j = j_begin;
  for (; j + 4 <= j_end; j += 4) WeightBlock<4>(x, m, w, k, j, accumulate, y, ldy);
  for (; j < j_end; ++j) WeightBlock<1>(x, m, w, k, j, accumulate, y, ldy);
}

}  // namespace cpu
}  // namespace glm4v
