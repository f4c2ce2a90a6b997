// Products with quantized weights (kernels/linear_weight.h), dequantized in registers: int8
// values are widened to f32 and the row's scale applied to the finished sum; int4 values are
// unpacked from their nibbles, shifted by the group's zero point (exact small integers) and
// multiplied by its scale, then used as f32 weights. x stays f32, so the result is the f32
// product with the dequantized matrix up to the order of the sums, and decode reads 1 (int8)
// or ~0.56 (int4) bytes per weight instead of bf16's 2. Register blocks and the caller's row
// blocking as matmul_bf16.h. Scalar, AVX2 and AVX-512 forms, picked by ActiveSimdLevel().
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// For i < m and j in [j_begin, j_end): y[i * ldy + j] = (accumulate ? y[...] : 0) +
// scale[j] * sum over t < k of x[i * k + t] * q[j * k + t].
void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale, int64_t k,
                int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy);

// As MatmulInt8 with int4 rows (Int4RowBytes(k) bytes each) and per-group scales and zero
// points ([n, Int4Groups(k)]): weight (j, t) = scale[j, g] * (q[j, t] - zero[j, g]).
void MatmulInt4(const float* x, int64_t m, const uint8_t* packed, const float* scales,
                const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end, bool accumulate,
                float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
