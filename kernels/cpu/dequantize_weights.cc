#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include "kernels/cpu/dequantize_weights.h"

#include "common/dtype.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/parallel.h"
#include "kernels/fp8_e4m3.h"

#define GLM4V_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

// Plain per-value loops the compiler vectorizes at -O3 (the build's -O2 keeps them scalar).
#pragma GCC optimize("O3")

namespace glm4v {
namespace cpu {
namespace {

void Int8Row(const int8_t* q, float scale, int64_t k, uint16_t* out) {
  for (int64_t t = 0; t < k; ++t) out[t] = F32ToBF16(scale * static_cast<float>(q[t]));
}

// Values [t_begin, k) of a row (t_begin a multiple of the 32-value block).
void Int4Row(const uint8_t* packed, const float* scales, const uint8_t* zeros, int64_t k,
             uint16_t* out, int64_t t_begin = 0) {
  for (int64_t t0 = t_begin; t0 < k; t0 += kInt4BlockValues) {
    const uint8_t* bytes = packed + t0 / 2;
    const int64_t g = t0 / kInt4GroupSize;
    const float s = scales[g], z = static_cast<float>(zeros[g]);
    const int64_t n = k - t0 < kInt4BlockValues ? k - t0 : kInt4BlockValues;
    uint16_t block[kInt4BlockValues];
    for (int i = 0; i < 16; ++i) {
      block[i] = F32ToBF16((static_cast<float>(bytes[i] & 15) - z) * s);
      block[16 + i] = F32ToBF16((static_cast<float>(bytes[i] >> 4) - z) * s);
    }
    for (int64_t i = 0; i < n; ++i) out[t0 + i] = block[i];
  }
}

// AVX-512 BF16 forms (the bf16-activation path runs only where the CPU has it): 16 values per
// step converted with one rounding instruction (round to nearest even, as F32ToBF16).
GLM4V_AVX512_BF16 void Int8RowAvx512(const int8_t* q, float scale, int64_t k, uint16_t* out) {
  const __m512 s = _mm512_set1_ps(scale);
  int64_t t = 0;
  for (; t + 16 <= k; t += 16) {
    const __m512 v = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + t))));
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_mul_ps(v, s));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t), reinterpret_cast<const __m256i&>(b));
  }
  for (; t < k; ++t) out[t] = F32ToBF16(scale * static_cast<float>(q[t]));
}

GLM4V_AVX512_BF16 void Int4RowAvx512(const uint8_t* packed, const float* scales,
                                     const uint8_t* zeros, int64_t k, uint16_t* out) {
  const int64_t full = k / kInt4BlockValues * kInt4BlockValues;
  for (int64_t t0 = 0; t0 < full; t0 += kInt4BlockValues) {
    const int64_t g = t0 / kInt4GroupSize;
    const __m512 s = _mm512_set1_ps(scales[g]);
    const __m512 z = _mm512_set1_ps(static_cast<float>(zeros[g]));
    const __m512i v = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + t0 / 2)));
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32(15)));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(v, 4));
    const __m256bh bl = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_sub_ps(lo, z), s));
    const __m256bh bh = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_sub_ps(hi, z), s));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t0), reinterpret_cast<const __m256i&>(bl));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t0 + 16),
                        reinterpret_cast<const __m256i&>(bh));
  }
  if (full < k) Int4Row(packed, scales, zeros, k, out, full);
}

}  // namespace

void DequantizeRowsToBf16(const LinearWeight& w, int64_t r_begin, int64_t r_end, uint16_t* out) {
  const int64_t k = w.in;
  const uint8_t* values = w.values.data<uint8_t>();
  const float* scales = w.scales.data<float>();
  ParallelFor(r_end - r_begin, k * 4, [&](int64_t i) {
    const int64_t r = r_begin + i;
    const bool simd = CpuHasBf16Dot();
    if (w.format == WeightFormat::kFp8) {
      const uint8_t* q = values + r * k;
      for (int64_t t = 0; t < k; ++t) out[i * k + t] = F32ToBF16(scales[r] * E4M3ToF32(q[t]));
      return;
    }
    if (w.format == WeightFormat::kInt8) {
      const int8_t* q = reinterpret_cast<const int8_t*>(values) + r * k;
      if (simd) {
        Int8RowAvx512(q, scales[r], k, out + i * k);
      } else {
        Int8Row(q, scales[r], k, out + i * k);
      }
    } else {
      const int64_t groups = Int4Groups(k);
      const uint8_t* row = values + r * Int4RowBytes(k);
      const uint8_t* z = w.zeros.data<uint8_t>() + r * groups;
      if (simd) {
        Int4RowAvx512(row, scales + r * groups, z, k, out + i * k);
      } else {
        Int4Row(row, scales + r * groups, z, k, out + i * k);
      }
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
