// AVX2 + FMA forms of the row kernels, compiled with a function-level target so the build stays
// plain x86-64; only called when CPUID has them (simd_level.h). Tails go through a padded copy.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cpu/row_kernels_impl.h"

namespace glm4v {
namespace cpu {
namespace avx2 {
namespace {

constexpr int kLanes = 8;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The last n - i (< 8) values of a row, padded with `fill`.
GLM4V_AVX2 inline __m256 LoadTail(const float* row, int64_t remaining, float fill) {
  alignas(32) float padded[kLanes];
  for (int l = 0; l < kLanes; ++l) padded[l] = l < remaining ? row[l] : fill;
  return _mm256_load_ps(padded);
}

GLM4V_AVX2 inline __m256 TailValid(int64_t remaining) {
  alignas(32) int32_t bits[kLanes];
  for (int l = 0; l < kLanes; ++l) bits[l] = l < remaining ? -1 : 0;
  return _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(bits)));
}

// exp(x); NaN and x < -87.33 (below the smallest normal) give 0, x > 88 is clamped.
GLM4V_AVX2 inline __m256 Exp(__m256 x_in) {
  const __m256 low = _mm256_set1_ps(-87.33f);
  const __m256 in_range = _mm256_cmp_ps(x_in, low, _CMP_GE_OQ);  // false for NaN
  __m256 x = _mm256_max_ps(x_in, low);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP5));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(exponent)), in_range);
}

GLM4V_AVX2 inline __m256d AddWidened(__m256d acc, __m256 w) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
}

GLM4V_AVX2 inline __m256 ExpTerm(__m256 v, __m256 scale, __m256 shift) {
  return Exp(_mm256_sub_ps(_mm256_mul_ps(v, scale), shift));
}

GLM4V_AVX2 inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

GLM4V_AVX2 inline double HorizontalSum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

}  // namespace

GLM4V_AVX2 float MaxRow(const float* row, int64_t n) {
  __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(row + i), m0);  // NaN in the row keeps m
    m1 = _mm256_max_ps(_mm256_loadu_ps(row + i + kLanes), m1);
  }
  float max = HorizontalMax(_mm256_max_ps(m0, m1));
  for (; i < n; ++i) {
    if (row[i] > max) max = row[i];
  }
  return max;
}

GLM4V_AVX2 float BlockMaxRow(const float* row, int64_t n, float* block_max) {
  static_assert(kMaxBlock == 8 * kLanes, "a block is eight vectors");
  float all = kNegInf;
  int64_t b = 0, i = 0;
  for (; i + kMaxBlock <= n; i += kMaxBlock, ++b) {
    __m256 m0 = _mm256_set1_ps(kNegInf), m1 = m0;
    for (int v = 0; v < 8; v += 2) {
      m0 = _mm256_max_ps(_mm256_loadu_ps(row + i + v * kLanes), m0);  // NaN keeps m
      m1 = _mm256_max_ps(_mm256_loadu_ps(row + i + (v + 1) * kLanes), m1);
    }
    block_max[b] = HorizontalMax(_mm256_max_ps(m0, m1));
    if (block_max[b] > all) all = block_max[b];
  }
  if (i < n) {
    block_max[b] = MaxRow(row + i, n - i);
    if (block_max[b] > all) all = block_max[b];
  }
  return all;
}

GLM4V_AVX2 int64_t ArgmaxRow(const float* row, int64_t n) {
  __m256 best = _mm256_set1_ps(kNegInf);
  __m256i best_index = _mm256_setzero_si256();
  __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(kLanes);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 v = _mm256_loadu_ps(row + i);
    const __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);  // each lane keeps its first max
    best = _mm256_blendv_ps(best, v, greater);
    best_index = _mm256_blendv_epi8(best_index, index, _mm256_castps_si256(greater));
    index = _mm256_add_epi32(index, step);
  }
  alignas(32) float values[kLanes];
  alignas(32) int32_t indices[kLanes];
  _mm256_store_ps(values, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(indices), best_index);
  int64_t best_i = 0;
  float best_value = kNegInf;
  for (int l = 0; l < kLanes; ++l) {
    if (values[l] > best_value || (values[l] == best_value && values[l] > kNegInf &&
                                   indices[l] < best_i)) {
      best_value = values[l];
      best_i = indices[l];
    }
  }
  for (; i < n; ++i) {
    if (row[i] > best_value) {
      best_value = row[i];
      best_i = i;
    }
  }
  return best_i;
}

GLM4V_AVX2 double SumExpRow(const float* row, int64_t n, float scale, float shift) {
  const __m256 sc = _mm256_set1_ps(scale);
  const __m256 sh = _mm256_set1_ps(shift);
  __m256d total = _mm256_setzero_pd();
  int64_t i = 0;
  // Runs of kF32RunVectors vectors in two f32 accumulators, then widened into the total.
  while (i + kLanes <= n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    const int64_t run_end = std::min<int64_t>(n - n % kLanes, i + kF32RunVectors * kLanes);
    for (; i + 2 * kLanes <= run_end; i += 2 * kLanes) {
      a0 = _mm256_add_ps(a0, ExpTerm(_mm256_loadu_ps(row + i), sc, sh));
      a1 = _mm256_add_ps(a1, ExpTerm(_mm256_loadu_ps(row + i + kLanes), sc, sh));
    }
    for (; i < run_end; i += kLanes) a0 = _mm256_add_ps(a0, ExpTerm(_mm256_loadu_ps(row + i), sc, sh));
    total = AddWidened(AddWidened(total, a0), a1);
  }
  if (i < n) {
    total = AddWidened(total, _mm256_and_ps(ExpTerm(LoadTail(row + i, n - i, 0.0f), sc, sh),
                                            TailValid(n - i)));
  }
  return HorizontalSum(total);
}

GLM4V_AVX2 void ExpRow(const float* row, int64_t n, float scale, float shift, float* out) {
  const __m256 sc = _mm256_set1_ps(scale);
  const __m256 sh = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    _mm256_storeu_ps(out + i, ExpTerm(_mm256_loadu_ps(row + i), sc, sh));
  }
  if (i < n) {
    alignas(32) float lanes[kLanes];
    _mm256_store_ps(lanes, ExpTerm(LoadTail(row + i, n - i, 0.0f), sc, sh));
    for (int64_t l = 0; i + l < n; ++l) out[i + l] = lanes[l];
  }
}

GLM4V_AVX2 int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end, float threshold,
                                  int32_t* out) {
  const __m256 t = _mm256_set1_ps(threshold);
  int64_t count = 0;
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + i), t, _CMP_GE_OQ));
    while (hit != 0) {
      out[count++] = static_cast<int32_t>(i + __builtin_ctz(hit));
      hit &= hit - 1;
    }
  }
  for (; i < end; ++i) {
    if (row[i] >= threshold) out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

namespace {

// As the AVX-512 form: 1 + erf from erfc(|z|) without cancellation for negative x.
GLM4V_AVX2 inline __m256 Gelu(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(kSqrtHalf));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(kErfP), one));
  __m256 p = _mm256_set1_ps(kErfA5);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfA4));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfA3));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfA2));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfA1));
  const __m256 erfc = _mm256_mul_ps(_mm256_mul_ps(p, t), Exp(_mm256_mul_ps(_mm256_sub_ps(
                                                                 _mm256_setzero_ps(), a), a)));
  const __m256 negative = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 one_plus_erf =
      _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc), erfc, negative);
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), one_plus_erf);
}

GLM4V_AVX2 inline __m256 SiluMul(__m256 a, __m256 b) {
  const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), a));
  return _mm256_mul_ps(_mm256_div_ps(a, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), b);
}

// Stores the first `remaining` (< 8) lanes of v.
GLM4V_AVX2 inline void StoreTail(float* out, int64_t remaining, __m256 v) {
  alignas(32) float lanes[kLanes];
  _mm256_store_ps(lanes, v);
  for (int64_t l = 0; l < remaining; ++l) out[l] = lanes[l];
}

}  // namespace

GLM4V_AVX2 void GeluRow(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(x + i, Gelu(_mm256_loadu_ps(x + i)));
  if (i < n) StoreTail(x + i, n - i, Gelu(LoadTail(x + i, n - i, 0.0f)));
}

GLM4V_AVX2 void SiluMulRow(const float* a, const float* b, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    _mm256_storeu_ps(y + i, SiluMul(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  if (i < n) {
    StoreTail(y + i, n - i, SiluMul(LoadTail(a + i, n - i, 0.0f), LoadTail(b + i, n - i, 0.0f)));
  }
}

}  // namespace avx2
}  // namespace cpu
}  // namespace glm4v
