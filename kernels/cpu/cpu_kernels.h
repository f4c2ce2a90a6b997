// Raw CPU kernels over contiguous row-major buffers: f32 math, with bf16 storage for weight
// matrices, embedding tables and the KV cache (converted to f32 on the fly). The CPU backend
// (cpu_backend.h) wraps them behind the Backend interface after validating arguments; they
// assume valid input.
#pragma once

#include <cstdint>

#include "common/dtype.h"
#include "kernels/ops.h"
#include "model/kv_cache.h"

namespace glm4v {
namespace cpu {

// dst[0:n] = src[0:n] as f32, src stored as `dtype` (f32 or bf16).
void ConvertToF32(const void* src, DType dtype, int64_t n, float* dst);
// dst[0:n] = src[0:n] stored as `dtype` (f32 or bf16, round to nearest even).
void ConvertFromF32(const float* src, int64_t n, DType dtype, void* dst);

// y[m, n] = x[m, k] . w[n, k] + bias[n] (+ y[m, n] when `accumulate`); bias may be null.
// f32 w through OpenBLAS sgemm, bf16 read in place (matmul_bf16.h), f16 as converted panels.
void Linear(const float* x, const void* w, DType w_dtype, const float* bias, int64_t m,
            int64_t n, int64_t k, bool accumulate, float* y);
// The same with an int8 / int4 host weight (matmul_quantized.h).
void LinearQuantized(const float* x, const LinearWeight& w, const float* bias, int64_t m,
                     bool accumulate, float* y);

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
// out[i] = table[rows[i]] for i < n; table [*, cols] stored as `table_dtype`.
void GatherRows(const void* table, DType table_dtype, int64_t cols, const int32_t* rows,
                int64_t n, float* out);
void PatchIm2Col(const float* image, int64_t batch, int64_t channels, int64_t height,
                 int64_t width, ImageLayout layout, int kernel, float* cols);

// In-place GLM interleaved partial RoPE on x [rows, num_heads * head_dim].
void ApplyRope(float* x, int64_t rows, int64_t num_heads, int head_dim, int rotary_dim,
               const int32_t* positions, double base);

// Dense attention over `batch` stacked sequences of `len` rows each (see Backend::Attention).
void Attention(const float* q, const float* k, const float* v, int64_t batch, int64_t len,
               int num_heads, int num_kv_heads, int head_dim, bool causal, float scale,
               float* out);

// Writes rows i < n of k/v into cache slots[i] of `layer` (host cache, f32 or bf16); a
// negative slot skips its row.
void WriteKvCache(const float* k, const float* v, const int32_t* slots, int64_t n, int layer,
                  PagedKvCache* cache);
// Backend::PagedAttention over a host cache (f32 or bf16); `sequences` is PagedBatch's
// [num_seqs, 4] table, `block_tables` its concatenated block tables (both valid); `lse`
// [rows, num_heads] or null; the cache holds `share` of the tokens.
void PagedAttention(const float* q, const PagedKvCache& cache, int layer,
                    const int32_t* sequences, int64_t num_seqs, const int32_t* block_tables,
                    int num_heads, float scale, float* out, float* lse = nullptr,
                    ContextShare share = {});

void Argmax(const float* x, int64_t rows, int64_t cols, int32_t* out);

}  // namespace cpu
}  // namespace glm4v
