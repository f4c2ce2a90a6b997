// Products with fp8 (E4M3) weights on the CPU (kernels/linear_weight.h): no x86 CPU multiplies
// fp8, so the bytes are widened in registers: each e4m3 byte becomes the IEEE half of 2^-8 times
// its value by two shifts (kernels/fp8_e4m3.h), F16C widens the halves to f32, and the 256 is
// folded into the row's scale. Exact with respect to the dequantized matrix up to the order of
// the sums. The CPU path exists so an fp8 deployment can be checked against the goldens and the
// float model anywhere; Hopper / Ada run these weights on their fp8 tensor cores.
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// For i < m and j in [j_begin, j_end): y[i * ldy + j] = (accumulate ? y[...] : 0) +
// scale[j] * sum over t < k of x[i * k + t] * e4m3(q[j * k + t]).
void MatmulFp8(const float* x, int64_t m, const uint8_t* q, const float* scale, int64_t k,
               int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy);

// The scalar form (the reference the vector form is tested against, and the fallback).
void MatmulFp8Scalar(const float* x, int64_t m, const uint8_t* q, const float* scale, int64_t k,
                     int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy);

// out[t] = scale * e4m3(q[t]) for t < k (panels for the sgemm path of large products).
void DequantizeFp8Row(const uint8_t* q, float scale, int64_t k, float* out);

}  // namespace cpu
}  // namespace glm4v
