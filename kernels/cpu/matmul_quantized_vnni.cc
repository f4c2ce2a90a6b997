// AVX-512 VNNI forms of matmul_quantized_vnni.h. Blocks of J weight rows x I rows of x; per
// 128-value block one (int8: two) integer accumulators per pair, turned into f32 once per
// block. int8 weights are the signed operand of vpdpbusd, x + 128 the unsigned one; the
// 128 * sum(w) that adds is removed with a second vpdpbusd of ones. int4 weights (0..15) are
// the unsigned operand, x the signed one; the zero points come off through the block sums of x.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include "kernels/cpu/matmul_quantized_vnni.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/simd_level.h"
#include "kernels/linear_weight.h"

#define GLM4V_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma")))

namespace glm4v {
namespace cpu {
namespace {

std::atomic<bool>& Switch() {
  static std::atomic<bool> enabled{[] {
    const char* env = std::getenv("GLM4V_CPU_QUANT_ACTIVATIONS");
    return env == nullptr || std::strcmp(env, "f32") != 0;
  }()};
  return enabled;
}

bool CpuHasVnni() {
#if defined(__x86_64__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0;
  }();
  return has;
#else
  return false;
#endif
}

constexpr int64_t kBlock = kActivationBlock;

// Mask of the first `n` (< 64) bytes.
inline __mmask64 ByteMask(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
}

// int8 weights: rows [j, j + J) against I rows of x in int16; per 32 values one widening of
// each weight row to int16 and one vpdpwssd per (row of x, weight row).
template <int I, int J>
GLM4V_AVX512_VNNI void Int8Block(const int16_t* x, const float* x_scales, int64_t row_values,
                                 const int8_t* q, const float* scale, int64_t k, int64_t j,
                                 bool accumulate, float* y, int64_t ldy) {
  __m512 acc[I][J];
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  for (int64_t b0 = 0; b0 < k; b0 += kBlock) {
    __m512i dot[I][J];
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) dot[i][jj] = _mm512_setzero_si512();
    }
#pragma GCC unroll 4
    for (int part = 0; part < 4; ++part) {
      const int64_t t = b0 + part * 32;
      if (t >= k) break;
      const __mmask32 mask =
          k - t >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint64_t{1} << (k - t)) - 1);
      __m512i w[J];
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) {
        w[jj] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(mask, q + (j + jj) * k + t));
      }
#pragma GCC unroll 16
      for (int i = 0; i < I; ++i) {
        const __m512i xv = _mm512_loadu_si512(x + i * row_values + t);
#pragma GCC unroll 16
        for (int jj = 0; jj < J; ++jj) dot[i][jj] = _mm512_dpwssd_epi32(dot[i][jj], xv, w[jj]);
      }
    }
    const int64_t block = b0 / kBlock;
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      const __m512 xs = _mm512_set1_ps(x_scales[i * (row_values / kBlock) + block]);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) {
        acc[i][jj] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i][jj]), xs, acc[i][jj]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float v = scale[j + jj] * _mm512_reduce_add_ps(acc[i][jj]);
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + v : v;
    }
  }
}

// int4 weights: rows [j, j + J) against I quantized rows of x (int4 order).
template <int I, int J>
GLM4V_AVX512_VNNI void Int4Block(const QuantizedRows& x, int64_t row_bytes, const uint8_t* packed,
                                 const float* scales, const uint8_t* zeros, int64_t k, int64_t j,
                                 bool accumulate, float* y, int64_t ldy) {
  const int64_t groups = Int4Groups(k), w_row = Int4RowBytes(k), x_blocks = row_bytes / kBlock;
  __m512 acc[I][J];
  float correction[I][J] = {};
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) acc[i][jj] = _mm512_setzero_ps();
  }
  const __m512i low = _mm512_set1_epi8(15);
  for (int64_t g = 0; g < groups; ++g) {
    // One group = 128 values = 64 packed bytes (fewer at the end of a row).
    const __mmask64 mask = ByteMask(std::min<int64_t>(64, w_row - g * 64));
    __m512i lo[J], hi[J];
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      // An int4 row is only 32-107 cache lines, too short a stream for the hardware prefetcher
      // to ramp up: fetch the same line of the next block of rows (a block of rows ahead).
      _mm_prefetch(reinterpret_cast<const char*>(packed + (j + J + jj) * w_row + g * 64),
                   _MM_HINT_T0);
      const __m512i v = _mm512_maskz_loadu_epi8(mask, packed + (j + jj) * w_row + g * 64);
      lo[jj] = _mm512_and_si512(v, low);
      hi[jj] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
#pragma GCC unroll 16
    for (int i = 0; i < I; ++i) {
      // x in int4 order: the 64 values facing the low nibbles, then the 64 facing the high.
      const int8_t* xb = x.values + i * row_bytes + g * kBlock;
      const __m512i x_lo = _mm512_loadu_si512(xb);
      const __m512i x_hi = _mm512_loadu_si512(xb + 64);
      const float xs = x.scales[i * x_blocks + g];
      const float xsum = static_cast<float>(x.sums[i * x_blocks + g]);
#pragma GCC unroll 16
      for (int jj = 0; jj < J; ++jj) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[jj], x_lo);
        dot = _mm512_dpbusd_epi32(dot, hi[jj], x_hi);
        const float ws = scales[(j + jj) * groups + g];
        acc[i][jj] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(ws * xs), acc[i][jj]);
        correction[i][jj] += ws * xs * xsum * static_cast<float>(zeros[(j + jj) * groups + g]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < I; ++i) {
#pragma GCC unroll 16
    for (int jj = 0; jj < J; ++jj) {
      const float v = _mm512_reduce_add_ps(acc[i][jj]) - correction[i][jj];
      float& out = y[i * ldy + j + jj];
      out = accumulate ? out + v : v;
    }
  }
}

}  // namespace

bool Int8ActivationProductsEnabled() {
  return CpuHasVnni() && ActiveSimdLevel() == SimdLevel::kAvx512 &&
         Switch().load(std::memory_order_relaxed);
}

bool Int4ActivationProductsEnabled() {
  return Switch().load(std::memory_order_relaxed) &&
         (Int8ActivationProductsEnabled() || ActiveSimdLevel() != SimdLevel::kScalar);
}

void SetInt8ActivationProducts(bool enabled) { Switch().store(enabled); }

void MatmulInt4Dot(const QuantizedRows& x, int64_t m, const uint8_t* packed, const float* scales,
                   const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end,
                   bool accumulate, float* y, int64_t ldy) {
  if (Int8ActivationProductsEnabled()) {
    MatmulInt4Vnni(x, m, packed, scales, zeros, k, j_begin, j_end, accumulate, y, ldy);
  } else {
    MatmulInt4DotAvx2(x, m, packed, scales, zeros, k, j_begin, j_end, accumulate, y, ldy);
  }
}

void QuantizeActivations(const float* x, int64_t m, int64_t k, bool int4_order,
                         QuantizedRows out) {
  const int64_t row_bytes = QuantizedRowBytes(k), blocks = row_bytes / kBlock;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* qi = out.values + i * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t t0 = b * kBlock, t1 = std::min(k, t0 + kBlock);
      float max_abs = 0.0f;
      for (int64_t t = t0; t < t1; ++t) max_abs = std::max(max_abs, std::fabs(xi[t]));
      const float scale = max_abs / 127.0f;
      const float inv = max_abs > 0.0f ? 127.0f / max_abs : 0.0f;
      int32_t sum = 0;
      for (int64_t t = t0; t < t0 + kBlock; ++t) {
        const int8_t v =
            t < t1 ? static_cast<int8_t>(std::clamp(std::nearbyint(xi[t] * inv), -127.0f, 127.0f))
                   : 0;
        sum += v;
        int64_t at = t;
        if (int4_order) {  // position within the packed order of its 128-value group
          const int64_t r = t - t0, block32 = r / 32, within = r % 32;
          at = t0 + (within < 16 ? block32 * 16 + within : 64 + block32 * 16 + within - 16);
        }
        qi[at] = v;
      }
      out.scales[i * blocks + b] = scale;
      if (out.sums != nullptr) out.sums[i * blocks + b] = sum;
    }
  }
}

void QuantizeActivationsInt16(const float* x, int64_t m, int64_t k, int16_t* values,
                              float* scales) {
  const int64_t row_values = QuantizedRowBytes(k), blocks = row_values / kBlock;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t t0 = b * kBlock, t1 = std::min(k, t0 + kBlock);
      float max_abs = 0.0f;
      for (int64_t t = t0; t < t1; ++t) max_abs = std::max(max_abs, std::fabs(xi[t]));
      const float inv = max_abs > 0.0f ? 32767.0f / max_abs : 0.0f;
      for (int64_t t = t0; t < t0 + kBlock; ++t) {
        values[i * row_values + t] =
            t < t1 ? static_cast<int16_t>(
                         std::clamp(std::nearbyint(xi[t] * inv), -32767.0f, 32767.0f))
                   : 0;
      }
      scales[i * blocks + b] = max_abs / 32767.0f;
    }
  }
}

GLM4V_AVX512_VNNI void MatmulInt8Vnni(const int16_t* x, const float* x_scales, int64_t m,
                                      const int8_t* q, const float* scale, int64_t k,
                                      int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                                      int64_t ldy) {
  const int64_t row_values = QuantizedRowBytes(k), blocks = row_values / kBlock;
  ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
    constexpr int I = decltype(rows)::value;
    const int16_t* xi = x + i * row_values;
    const float* si = x_scales + i * blocks;
    int64_t j = j_begin;
    if (I == 1) {
      for (; j + 8 <= j_end; j += 8) {
        Int8Block<1, 8>(xi, si, row_values, q, scale, k, j, accumulate, y + i * ldy, ldy);
      }
    }
    for (; j + 4 <= j_end; j += 4) {
      Int8Block<I, 4>(xi, si, row_values, q, scale, k, j, accumulate, y + i * ldy, ldy);
    }
    for (; j < j_end; ++j) {
      Int8Block<I, 1>(xi, si, row_values, q, scale, k, j, accumulate, y + i * ldy, ldy);
    }
  });
}

GLM4V_AVX512_VNNI void MatmulInt4Vnni(const QuantizedRows& x, int64_t m, const uint8_t* packed,
                                      const float* scales, const uint8_t* zeros, int64_t k,
                                      int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                                      int64_t ldy) {
  const int64_t row_bytes = QuantizedRowBytes(k), blocks = row_bytes / kBlock;
  ForEachRowBlockOf4(m, [&](auto rows, int64_t i) {
    constexpr int I = decltype(rows)::value;
    const QuantizedRows xi{x.values + i * row_bytes, x.scales + i * blocks, x.sums + i * blocks};
    int64_t j = j_begin;
    if (I == 1) {
      // One row of x: 8 weight rows side by side keep more loads in flight.
      for (; j + 8 <= j_end; j += 8) {
        Int4Block<1, 8>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
      }
    }
    for (; j + 4 <= j_end; j += 4) {
      Int4Block<I, 4>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
    }
    for (; j < j_end; ++j) {
      Int4Block<I, 1>(xi, row_bytes, packed, scales, zeros, k, j, accumulate, y + i * ldy, ldy);
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
