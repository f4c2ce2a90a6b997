// Large products with bf16 activations through oneDNN's matmul (Debian's libdnnl 2.6): its
// brgemm kernels for AVX-512 BF16 / AMX run 1.15-1.3x our own vdpbf16ps block at prefill and
// vision sizes (428 against 337 GFLOP/s on the development machine), so the opt-in
// bf16-activation path (matmul_bf16.h) hands them to the library. The weights are read in
// place: an [n, k] row-major bf16 matrix is oneDNN's "ba" layout of the k x n operand, no
// reorder, no copy. Decode-sized products stay on our own kernels (the library's M = 1 path
// reads bf16 weights at a quarter of the bandwidth).
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// The fewest rows of x Linear hands to oneDNN: below them our own block is as fast or faster
// (310 against 249-312 GFLOP/s at 32 rows of a decoder layer).
constexpr int64_t kOneDnnMinRows = 128;

// Whether oneDNN has a JIT (not reference) bf16 matmul for this CPU and it is not switched
// off (GLM4V_ONEDNN=0 at start, or SetOneDnnMatmul(false)). Checked once per process.
bool OneDnnMatmulEnabled();
void SetOneDnnMatmul(bool enabled);

// For i < m, j < n: y[i * ldy + j] = (accumulate ? y[i * ldy + j] : 0) +
// sum over t < k of x[i * k + t] * w[j * k + t], x and w bf16 bits, sums in f32. Returns false
// (and writes nothing) when oneDNN cannot run it; the caller then uses its own kernel.
bool OneDnnMatmulBf16(const uint16_t* x, int64_t m, const uint16_t* w, int64_t k, int64_t n,
                      bool accumulate, float* y, int64_t ldy);

}  // namespace cpu
}  // namespace glm4v
