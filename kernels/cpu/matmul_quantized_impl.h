// Per-instruction-set forms of matmul_quantized.h (internal to the kernel).
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul_quantized.h"

namespace glm4v {
namespace cpu {

#define GLM4V_MATMUL_QUANTIZED(ns)                                                             \
  namespace ns {                                                                               \
  void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale, int64_t k,   \
                  int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy);     \
  void MatmulInt4(const float* x, int64_t m, const uint8_t* packed, const float* scales,       \
                  const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end,             \
                  bool accumulate, float* y, int64_t ldy);                                     \
  }

GLM4V_MATMUL_QUANTIZED(scalar)
GLM4V_MATMUL_QUANTIZED(avx2)
GLM4V_MATMUL_QUANTIZED(avx512)

#undef GLM4V_MATMUL_QUANTIZED

// One int4 value of a packed row (see kernels/linear_weight.h for the layout).
inline int Int4Value(const uint8_t* row, int64_t t) {
  const uint8_t byte = row[t / 32 * 16 + t % 16];
  return (t % 32) < 16 ? (byte & 15) : (byte >> 4);
}

// The scalar dot products the vector forms use for their column tails.
inline float Int8Dot(const float* x, const int8_t* q, int64_t t0, int64_t t1) {
  float s = 0.0f;
  for (int64_t t = t0; t < t1; ++t) s += x[t] * static_cast<float>(q[t]);
  return s;
}

// sum over t in [t0, t1) of x[t] * scale_g * (q - zero_g), t0..t1 inside one group.
inline float Int4GroupDot(const float* x, const uint8_t* row, float scale, int zero, int64_t t0,
                          int64_t t1) {
  float s = 0.0f;
  for (int64_t t = t0; t < t1; ++t) {
    s += x[t] * (static_cast<float>(Int4Value(row, t) - zero) * scale);
  }
  return s;
}

}  // namespace cpu
}  // namespace glm4v
