// AVX-512 forms of the row kernels (F/BW/DQ/VL), compiled with a function-level target so the
// build stays plain x86-64; only called when CPUID has them (simd_level.h).
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cpu/row_kernels_impl.h"

namespace glm4v {
namespace cpu {
namespace avx512 {
namespace {

constexpr int kLanes = 16;

GLM4V_AVX512 inline __mmask16 TailMask(int64_t remaining) {
  return static_cast<__mmask16>((1u << remaining) - 1u);
}

// exp(x); NaN and x < -104 give 0 or the smallest denormal, x > 88 is clamped.
GLM4V_AVX512 inline __m512 Exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));  // max_ps returns the 2nd operand for NaN
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP5));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, k);  // p * 2^k, denormals and underflow handled
}

GLM4V_AVX512 inline __m512d AddWidened(__m512d acc, __m512 w) {
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(w)));
  return _mm512_add_pd(
      acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1))));
}

GLM4V_AVX512 inline __m512 ExpTerm(__m512 v, __m512 scale, __m512 shift) {
  return Exp(_mm512_sub_ps(_mm512_mul_ps(v, scale), shift));
}

}  // namespace

GLM4V_AVX512 float MaxRow(const float* row, int64_t n) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = neg_inf, m1 = neg_inf;
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(row + i), m0);  // NaN in the row keeps m
    m1 = _mm512_max_ps(_mm512_loadu_ps(row + i + kLanes), m1);
  }
  for (; i < n; i += kLanes) {
    const __mmask16 valid = n - i >= kLanes ? 0xFFFF : TailMask(n - i);
    m0 = _mm512_max_ps(_mm512_mask_loadu_ps(neg_inf, valid, row + i), m0);
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

GLM4V_AVX512 float BlockMaxRow(const float* row, int64_t n, float* block_max) {
  static_assert(kMaxBlock == 4 * kLanes, "a block is four vectors");
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 all = neg_inf;
  int64_t b = 0, i = 0;
  for (; i + kMaxBlock <= n; i += kMaxBlock, ++b) {
    // max_ps returns its second operand for a NaN in the first: NaNs never reach m.
    __m512 m = _mm512_max_ps(_mm512_loadu_ps(row + i), neg_inf);
    m = _mm512_max_ps(_mm512_loadu_ps(row + i + kLanes), m);
    m = _mm512_max_ps(_mm512_loadu_ps(row + i + 2 * kLanes), m);
    m = _mm512_max_ps(_mm512_loadu_ps(row + i + 3 * kLanes), m);
    all = _mm512_max_ps(m, all);
    block_max[b] = _mm512_reduce_max_ps(m);
  }
  if (i < n) {
    block_max[b] = MaxRow(row + i, n - i);
    all = _mm512_max_ps(_mm512_set1_ps(block_max[b]), all);
  }
  return _mm512_reduce_max_ps(all);
}

GLM4V_AVX512 int64_t ArgmaxRow(const float* row, int64_t n) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 best = neg_inf;
  __m512i best_index = _mm512_setzero_si512();
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(kLanes);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 valid = n - i >= kLanes ? 0xFFFF : TailMask(n - i);
    const __m512 v = _mm512_mask_loadu_ps(neg_inf, valid, row + i);
    // Strictly greater: each lane keeps its first maximum.
    const __mmask16 greater = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, greater, v);
    best_index = _mm512_mask_mov_epi32(best_index, greater, index);
    index = _mm512_add_epi32(index, step);
  }
  const float max = _mm512_reduce_max_ps(best);
  if (!(max > -std::numeric_limits<float>::infinity())) return 0;
  const __mmask16 at_max = _mm512_cmp_ps_mask(best, _mm512_set1_ps(max), _CMP_EQ_OQ);
  return _mm512_mask_reduce_min_epi32(at_max, best_index);
}

GLM4V_AVX512 double SumExpRow(const float* row, int64_t n, float scale, float shift) {
  const __m512 sc = _mm512_set1_ps(scale);
  const __m512 sh = _mm512_set1_ps(shift);
  __m512d total = _mm512_setzero_pd();
  int64_t i = 0;
  // Runs of kF32RunVectors vectors in two f32 accumulators, then widened into the total.
  while (i + kLanes <= n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    const int64_t run_end = std::min<int64_t>(n - n % kLanes, i + kF32RunVectors * kLanes);
    for (; i + 2 * kLanes <= run_end; i += 2 * kLanes) {
      a0 = _mm512_add_ps(a0, ExpTerm(_mm512_loadu_ps(row + i), sc, sh));
      a1 = _mm512_add_ps(a1, ExpTerm(_mm512_loadu_ps(row + i + kLanes), sc, sh));
    }
    for (; i < run_end; i += kLanes) a0 = _mm512_add_ps(a0, ExpTerm(_mm512_loadu_ps(row + i), sc, sh));
    total = AddWidened(AddWidened(total, a0), a1);
  }
  if (i < n) {
    const __mmask16 valid = TailMask(n - i);
    total = AddWidened(total, _mm512_maskz_mov_ps(valid, ExpTerm(_mm512_maskz_loadu_ps(valid, row + i), sc, sh)));
  }
  return _mm512_reduce_add_pd(total);
}

GLM4V_AVX512 void ExpRow(const float* row, int64_t n, float scale, float shift, float* out) {
  const __m512 sc = _mm512_set1_ps(scale);
  const __m512 sh = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 valid = n - i >= kLanes ? 0xFFFF : TailMask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(valid, row + i);
    _mm512_mask_storeu_ps(out + i, valid, ExpTerm(v, sc, sh));
  }
}

GLM4V_AVX512 int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end,
                                    float threshold, int32_t* out) {
  const __m512 t = _mm512_set1_ps(threshold);
  __m512i index = _mm512_add_epi32(
      _mm512_set1_epi32(static_cast<int32_t>(begin)),
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m512i step = _mm512_set1_epi32(kLanes);
  int64_t count = 0;
  for (int64_t i = begin; i < end; i += kLanes) {
    const __mmask16 valid = end - i >= kLanes ? 0xFFFF : TailMask(end - i);
    const __m512 v = _mm512_maskz_loadu_ps(valid, row + i);
    const __mmask16 hit = _mm512_mask_cmp_ps_mask(valid, v, t, _CMP_GE_OQ);
    if (hit != 0) {
      // Compress in a register and store whole (a compressing store to memory is slow on
      // some cores); the slack behind `count` absorbs the unused lanes.
      _mm512_storeu_si512(out + count, _mm512_maskz_compress_epi32(hit, index));
      count += __builtin_popcount(hit);
    }
    index = _mm512_add_epi32(index, step);
  }
  return count;
}

namespace {

// x / 2 * (1 + erf(x / sqrt 2)); 1 + erf is formed as erfc(|z|) or 2 - erfc(|z|), so negative
// x lose no digits to cancellation.
GLM4V_AVX512 inline __m512 Gelu(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(kSqrtHalf));
  const __m512 a = _mm512_abs_ps(z);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(a, _mm512_set1_ps(kErfP), one));
  __m512 p = _mm512_set1_ps(kErfA5);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kErfA4));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kErfA3));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kErfA2));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(kErfA1));
  const __m512 erfc = _mm512_mul_ps(_mm512_mul_ps(p, t), Exp(_mm512_mul_ps(_mm512_sub_ps(
                                                                 _mm512_setzero_ps(), a), a)));
  const __mmask16 negative = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 one_plus_erf =
      _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(2.0f), erfc), negative, erfc);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus_erf);
}

}  // namespace

GLM4V_AVX512 void GeluRow(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 valid = n - i >= kLanes ? 0xFFFF : TailMask(n - i);
    _mm512_mask_storeu_ps(x + i, valid, Gelu(_mm512_maskz_loadu_ps(valid, x + i)));
  }
}

GLM4V_AVX512 void SiluMulRow(const float* a, const float* b, int64_t n, float* y) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 valid = n - i >= kLanes ? 0xFFFF : TailMask(n - i);
    const __m512 av = _mm512_maskz_loadu_ps(valid, a + i);
    const __m512 bv = _mm512_maskz_loadu_ps(valid, b + i);
    const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), av));
    const __m512 silu = _mm512_div_ps(av, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(y + i, valid, _mm512_mul_ps(silu, bv));
  }
}

}  // namespace avx512
}  // namespace cpu
}  // namespace glm4v
