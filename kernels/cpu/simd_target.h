// Shared preamble of the hand-written SIMD kernel files: builds target plain x86-64, so each
// file compiles its forms for one instruction set with a function-level target attribute and
// is only called when CPUID has that set (simd_level.h). Include it first.
#pragma once

// GCC 12 reports the intrinsics' own _mm*_undefined_* placeholders as uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#define GLM4V_AVX2 __attribute__((target("avx2,fma")))
#define GLM4V_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

#include <cstdint>
#include <type_traits>

namespace glm4v {
namespace cpu {

// The sum of the 8 lanes (the AVX2 kernels' end of a dot product).
GLM4V_AVX2 inline float HorizontalSumAvx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Drives a kernel register-blocked over 4 rows: block(std::integral_constant<int, R>{}, row)
// for rows [0, rows) in blocks of R = 4, then one block of the 1-3 rows left, so every block
// size is a compile-time constant of the kernel.
template <typename Block>
inline void ForEachRowBlockOf4(int64_t rows, Block&& block) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) block(std::integral_constant<int, 4>{}, r);
  switch (rows - r) {
    case 3:
      block(std::integral_constant<int, 3>{}, r);
      break;
    case 2:
      block(std::integral_constant<int, 2>{}, r);
      break;
    case 1:
      block(std::integral_constant<int, 1>{}, r);
      break;
    default:
      break;
  }
}

}  // namespace cpu
}  // namespace glm4v
