// Per-instruction-set forms of row_kernels.h (internal to the row kernels).
#pragma once

#include <cstdint>

#include "kernels/cpu/row_kernels.h"

namespace glm4v {
namespace cpu {

#define GLM4V_ROW_KERNELS(ns)                                                                  \
  namespace ns {                                                                               \
  float MaxRow(const float* row, int64_t n);                                                   \
  float BlockMaxRow(const float* row, int64_t n, float* block_max);                            \
  int64_t ArgmaxRow(const float* row, int64_t n);                                              \
  double SumExpRow(const float* row, int64_t n, float scale, float shift);                     \
  void ExpRow(const float* row, int64_t n, float scale, float shift, float* out);              \
  int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end, float threshold,        \
                         int32_t* out);                                                        \
  void GeluRow(float* x, int64_t n);                                                           \
  void SiluMulRow(const float* a, const float* b, int64_t n, float* y);                        \
  }

GLM4V_ROW_KERNELS(scalar)
GLM4V_ROW_KERNELS(avx2)
GLM4V_ROW_KERNELS(avx512)

#undef GLM4V_ROW_KERNELS

// Terms summed in f32 per lane before widening to the double total.
constexpr int kF32RunVectors = 16;

// Cephes-style expf: exp(x) = 2^k * p(r), r = x - k ln2, |r| <= ln2 / 2.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f;
constexpr float kExpP1 = 1.3981999507e-3f;
constexpr float kExpP2 = 8.3334519073e-3f;
constexpr float kExpP3 = 4.1665795894e-2f;
constexpr float kExpP4 = 1.6666665459e-1f;
constexpr float kExpP5 = 5.0000001201e-1f;

// erf(x) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-x^2), t = 1 / (1 + p x), x >= 0
// (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7); odd in x.
constexpr float kErfP = 0.3275911f;
constexpr float kErfA1 = 0.254829592f;
constexpr float kErfA2 = -0.284496736f;
constexpr float kErfA3 = 1.421413741f;
constexpr float kErfA4 = -1.453152027f;
constexpr float kErfA5 = 1.061405429f;
constexpr float kSqrtHalf = 0.70710678118654752f;

}  // namespace cpu
}  // namespace glm4v
