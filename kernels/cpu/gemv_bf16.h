// Few-row products with bf16 weights read in place (the decode step's Linear layers): each
// weight is widened to f32 in registers (exact: bf16 is the top half of an f32) and multiplied
// in f32, so the result is the f32 product up to the order of the sums, and the weights are
// read once per call at memory speed with no f32 copy. Scalar, AVX2 and AVX-512 forms, picked
// by ActiveSimdLevel() (simd_level.h).
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// Rows of x at which Linear switches from this kernel to converted panels + sgemm.
constexpr int64_t kGemvMaxRows = 16;

// For i < m and j in [j_begin, j_end): y[i * ldy + j] = (accumulate ? y[...] : 0) +
// sum over kk < k of x[i * k + kk] * w[j * k + kk], w being bf16 bits [n, k] row-major.
void GemvBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
              int64_t j_end, bool accumulate, float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
