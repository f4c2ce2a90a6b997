// Decode-sized products with int8 / int4 weights as integer dot products (AVX-512 VNNI; int4
// also AVX2), the
// way llama.cpp multiplies Q8_0 / Q4_0 weights: the few rows of x are quantized per block of 128
// values (the int4 group) and each block's integer dot product is scaled once. Dequantizing
// every weight to f32 costs ~3 vector ops per 16 weights and made decode compute-bound (int4: 9
// ms per GLM-4 layer against 2.4 ms of memory); this path costs ~10-14 per 128.
//   - int8 weights: x to int16 (scale max|x| / 32767: 1.5e-5 of the block's largest value, far
//     below the weights' own rounding), `vpdpwssd` (32 products per instruction);
//   - int4 weights: x to int8 (scale max|x| / 127, ~0.4 %), `vpdpbusd` (64 per instruction).
// Results differ from the f32 product by that rounding, so Linear uses this path only for
// products of at most kVnniMaxRows rows and lets it be switched off
// (GLM4V_CPU_QUANT_ACTIVATIONS=f32).
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
// int4 weights also take the integer path on AVX2 (vpmaddubsw, MatmulInt4DotAvx2).
bool Int4ActivationProductsEnabled();
// Switches both paths (tests compare them with the exact f32 products).
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

// Rows of x as int16 per block of kActivationBlock (QuantizedRowBytes(k) values per row, zero
// padded; one scale per block), for int8 weights.
void QuantizeActivationsInt16(const float* x, int64_t m, int64_t k, int16_t* values,
                              float* scales);

// y[i * ldy + j] (+)= sum_t x[i, t] w[j, t] for j in [j_begin, j_end), x given quantized
// (int8 weights: QuantizeActivationsInt16; int4: QuantizeActivations in int4 order). Require
// the CPU's VNNI.
void MatmulInt8Vnni(const int16_t* x, const float* x_scales, int64_t m, const int8_t* q,
                    const float* scale, int64_t k, int64_t j_begin, int64_t j_end,
                    bool accumulate, float* y, int64_t ldy);
void MatmulInt4Vnni(const QuantizedRows& x, int64_t m, const uint8_t* packed,
                    const float* scales, const uint8_t* zeros, int64_t k, int64_t j_begin,
                    int64_t j_end, bool accumulate, float* y, int64_t ldy);
// The same with AVX2 (vpmaddubsw + vpmaddwd; matmul_quantized_dot_avx2.cc).
void MatmulInt4DotAvx2(const QuantizedRows& x, int64_t m, const uint8_t* packed,
                       const float* scales, const uint8_t* zeros, int64_t k, int64_t j_begin,
                       int64_t j_end, bool accumulate, float* y, int64_t ldy);
// MatmulInt4Vnni where the CPU has it, else MatmulInt4DotAvx2.
void MatmulInt4Dot(const QuantizedRows& x, int64_t m, const uint8_t* packed, const float* scales,
                   const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end,
                   bool accumulate, float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
