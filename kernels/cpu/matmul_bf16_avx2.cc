// AVX2 + FMA form of MatmulBf16: blocks of 2 weight rows x up to 4 rows of x (8 accumulators);
// per 8 columns one load of each x row and of each weight row (widened by a 16-bit shift).
// Compiled with a function-level target; only called when CPUID has AVX2 and FMA.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <cstdint>
#include <cstring>

#include "kernels/cpu/matmul_bf16_impl.h"

namespace glm4v {
namespace cpu {
namespace avx2 {
namespace {

constexpr int kLanes = 8;

GLM4V_AVX2 inline __m256 Widen(const uint16_t* w) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
}

inline float WidenOne(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Weight rows [j, j + J) against x rows [0, I).
template <int I, int J>
GLM4V_AVX2 void Block(const float* x, const uint16_t* w, int64_t k, int64_t j, bool accumulate,
                      float* y, int64_t ldy) {
  __m256 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm256_setzero_ps();
  }
  const uint16_t* wj = w + j * k;
  int64_t kk = 0;
  for (; kk + kLanes <= k; kk += kLanes) {
    __m256 wv[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) wv[jj] = Widen(wj + jj * k + kk);
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
      float sum = HorizontalSumAvx2(acc[i][jj]);
      for (int64_t t = kk; t < k; ++t) sum += x[i * k + t] * WidenOne(wj[jj * k + t]);
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + sum : sum;
    }
  }
}

// Weight rows [j, j + J) against every row of x, 4 at a time: the J weight rows come from
// memory once and from the cache for each further group of x rows.
template <int J>
GLM4V_AVX2 void WeightBlock(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j,
                         bool accumulate, float* y, int64_t ldy) {
  ForEachRowBlockOf4(m, [&](auto block_rows, int64_t i) {
    Block<decltype(block_rows)::value, J>(x + i * k, w, k, j, accumulate, y + i * ldy, ldy);
  });
}

}  // namespace

GLM4V_AVX2 void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
                         int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  int64_t j = j_begin;
  for (; j + 2 <= j_end; j += 2) WeightBlock<2>(x, m, w, k, j, accumulate, y, ldy);
  for (; j < j_end; ++j) WeightBlock<1>(x, m, w, k, j, accumulate, y, ldy);
}

}  // namespace avx2
}  // namespace cpu
}  // namespace glm4v
