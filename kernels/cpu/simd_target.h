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
