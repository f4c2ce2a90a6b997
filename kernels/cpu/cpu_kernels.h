// Raw fp32 CPU kernels over contiguous row-major buffers. The CPU backend (cpu_backend.h) wraps
// them behind the Backend interface after validating arguments; they assume valid input.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "kernels/ops.h"
#include "model/kv_cache.h"

namespace glm4v {
namespace cpu {

// y[m, n] = x[m, k] . w[n, k] + bias[n] (bias may be null). OpenBLAS sgemm.
void Linear(const float* x, const float* w, const float* bias, int64_t m, int64_t n, int64_t k,
            float* y);

// Per-row norms; statistics accumulate in double.
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);
void LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim,
               float eps, float* y);

// Exact (erf) GELU, in place.
void Gelu(float* x, int64_t n);
// x [rows, 2 * half] -> y [rows, half] = silu(x[:, :half]) * x[:, half:].
void SiluAndMul(const float* x, int64_t rows, int64_t half, float* y);
void Add(const float* x, int64_t n, float* acc);
void Scale(float scale, int64_t n, float* x);

// Copies columns [col_begin, col_begin + width) of x [rows, x_cols] into y [rows, width].
void CopyColumns(const float* x, int64_t rows, int64_t x_cols, int64_t col_begin, int64_t width,
                 float* y);
void GatherRows(const float* table, int64_t cols, absl::Span<const int32_t> rows, float* out);
void PatchIm2Col(const float* image, int64_t batch, int64_t channels, int64_t height,
                 int64_t width, ImageLayout layout, int kernel, float* cols);

// In-place GLM interleaved partial RoPE on x [rows, num_heads * head_dim].
void ApplyRope(float* x, int64_t rows, int64_t num_heads, int head_dim, int rotary_dim,
               const int32_t* positions, double base);

// Dense attention over `batch` stacked sequences of `len` rows each (see Backend::Attention).
void Attention(const float* q, const float* k, const float* v, int64_t batch, int64_t len,
               int num_heads, int num_kv_heads, int head_dim, bool causal, float scale,
               float* out);

void WriteKvCache(const float* k, const float* v, absl::Span<const int32_t> slots, int layer,
                  PagedKvCache* cache);
void PagedAttention(const float* q, const PagedKvCache& cache, int layer,
                    absl::Span<const PagedSequence> sequences, int num_heads, float scale,
                    float* out);

void Argmax(const float* x, int64_t rows, int64_t cols, int32_t* out);

}  // namespace cpu
}  // namespace glm4v
