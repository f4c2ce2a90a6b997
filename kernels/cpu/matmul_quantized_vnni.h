// Decode-sized products with int8 / int4 weights as integer dot products (AVX-512 VNNI
// `vpdpbusd`: 64 byte products per instruction), the way llama.cpp multiplies Q8_0 / Q4_0
// weights: the few rows of x are quantized to int8 per block of 128 values (the int4 group),
// scale max|x| / 127, and each block's integer dot product is scaled once. Dequantizing every
// weight to f32 costs ~3 vector ops per 16 weights and made int4 decode compute-bound (9 ms per
// GLM-4 layer against 2.4 ms of memory); this path costs ~10 per 128.
// The activations' rounding (~0.4 % of a block's largest value) is the price: results differ
// from the f32 product by it, so Linear uses this path only for products of at most
// kVnniMaxRows rows and lets it be switched off (GLM4V_CPU_QUANT_ACTIVATIONS=f32).
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// Products of up to this many rows of x take the integer path (decode steps, small batches).
constexpr int64_t kVnniMaxRows = 16;
// Values of x per activation scale.
constexpr int64_t kActivationBlock = 128;

// Whether this CPU has AVX-512 VNNI (and AVX-512 is the active SIMD level) and the integer path
// is on (GLM4V_CPU_QUANT_ACTIVATIONS not "f32" at start; SetInt8ActivationProducts).
bool Int8ActivationProductsEnabled();
void SetInt8ActivationProducts(bool enabled);

// Bytes of one quantized row of x for a k-wide product (whole blocks).
inline int64_t QuantizedRowBytes(int64_t k) {
  return (k + kActivationBlock - 1) / kActivationBlock * kActivationBlock;
}

// Rows of x quantized for the integer path: per row QuantizedRowBytes(k) int8 values (zero
// padded), one scale per block, and (for int4) the block sums of the values. With
// `int4_order` the values of each 32-wide block are stored as the packed int4 weights hold
// theirs (see kernels/linear_weight.h): per 128 values, the first 16 of each 32-block, then
// their second 16.
struct QuantizedRows {
  int8_t* values;
  float* scales;
  int32_t* sums;
};
void QuantizeActivations(const float* x, int64_t m, int64_t k, bool int4_order,
                         QuantizedRows out);

// y[i * ldy + j] (+)= sum_t x[i, t] w[j, t] for j in [j_begin, j_end), x given quantized
// (QuantizeActivations, natural order for int8, int4 order for int4). Require the CPU's VNNI.
void MatmulInt8Vnni(const QuantizedRows& x, int64_t m, const int8_t* q, const float* scale,
                    int64_t k, int64_t j_begin, int64_t j_end, bool accumulate, float* y,
                    int64_t ldy);
void MatmulInt4Vnni(const QuantizedRows& x, int64_t m, const uint8_t* packed,
                    const float* scales, const uint8_t* zeros, int64_t k, int64_t j_begin,
                    int64_t j_end, bool accumulate, float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
