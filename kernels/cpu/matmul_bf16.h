// Products with bf16 weights read in place (every Linear layer of a bf16 checkpoint on the CPU):
// each weight is widened to f32 in registers (exact: bf16 is the top half of an f32) and
// multiplied in f32, so the result is the f32 product up to the order of the sums, with no f32
// copy of the weights. Register blocks of weight rows x 4 rows of x; the caller takes the rows
// of x in blocks (kMatmulBf16RowBlock) so a block of x stays in cache while the weights stream:
// at decode sizes it runs at memory speed, at prefill sizes at about OpenBLAS sgemm's rate.
// Scalar, AVX2 and AVX-512 forms, picked by ActiveSimdLevel() (simd_level.h).
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// Rows of x per pass over the weights in Linear (2 MB of x at k = 4096).
constexpr int64_t kMatmulBf16RowBlock = 128;

// For i < m and j in [j_begin, j_end): y[i * ldy + j] = (accumulate ? y[...] : 0) +
// sum over kk < k of x[i * k + kk] * w[j * k + kk], w being bf16 bits [n, k] row-major.
void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
              int64_t j_end, bool accumulate, float* y, int64_t ldy);

// --- bf16 activations (opt-in) ---
// With GLM4V_CPU_MATMUL=bf16 (or SetBf16ActivationMatmul), Linear rounds x to bf16 for products
// of at least kBf16ActivationMinRows rows (prefill, the vision tower) and multiplies bf16 x bf16
// pairs with f32 sums (AVX-512 BF16 `vdpbf16ps`: twice the f32 FMA rate), where CPUID has it.
// Off by default: the results then differ from the f32 products by the activations' rounding
// (~3 significant digits), as llama.cpp's and oneDNN's bf16 paths do.
constexpr int64_t kBf16ActivationMinRows = 32;

// Whether this CPU has AVX-512 BF16 (and AVX-512 is the active SIMD level).
bool CpuHasBf16Dot();
// Whether Linear uses bf16 activations where it can (GLM4V_CPU_MATMUL=bf16 at start).
bool Bf16ActivationMatmulEnabled();
void SetBf16ActivationMatmul(bool enabled);

// As MatmulBf16 with x given as bf16 bits [m, k]. Requires CpuHasBf16Dot().
void MatmulBf16Dot(const uint16_t* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
                   int64_t j_end, bool accumulate, float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
