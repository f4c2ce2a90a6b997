// Kernels for Linear layers with quantized weights (kernels/linear_weight.h layouts, uploaded
// as they are): int8 (per-row scale), int4 (groups of 128, scale + zero point, nibbles in
// blocks of 32), fp8 e4m3 (per-row scale). T = float or __nv_bfloat16, fp32 math inside.
//   - QuantizedGemv: decode batches (m <= kQuantizedGemvMaxRows): one warp per weight row reads
//     its bytes from memory once (16 per lane per step), dequantizes them in registers and
//     multiplies them into tiles of 8 rows of x (W8A16 / W4A16: activations stay in T).
//   - DequantizeRows: rows of the weight widened to T, for prefill and vision, where the
//     caller multiplies the panel with cuBLASLt (the weights are reused across many rows there).
//   - QuantizeRowsToFp8: x rows to e4m3 with one f32 scale per row (amax / 448), the activation
//     side of the fp8 tensor-core GEMM (gemm.h, sm_90).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace glm4v::cuda {

// Beyond this many rows the weights are dequantized to a panel for cuBLASLt (re-dequantizing
// in registers per tile of 8 rows costs more than the panel's extra bytes).
constexpr int64_t kQuantizedGemvMaxRows = 64;

enum class QuantizedFormat : int { kInt8 = 1, kInt4 = 2, kFp8 = 3 };

struct QuantizedWeightView {
  QuantizedFormat format = QuantizedFormat::kInt8;
  const uint8_t* values = nullptr;  // [n, row bytes]
  const float* scales = nullptr;    // int8 / fp8: [n]; int4: [n, groups]
  const uint8_t* zeros = nullptr;   // int4: [n, groups]
  int64_t n = 0, k = 0;
};

// y[i, j] = (accumulate ? y[i, j] : 0) + bias[j] + sum_t x[i, t] * w[j, t], i < m <= 64.
template <typename T>
cudaError_t QuantizedGemv(const T* x, int64_t m, const QuantizedWeightView& w, const T* bias,
                          bool accumulate, T* y, cudaStream_t stream);

// out[(r - r_begin) * k + t] = w[r, t] for r in [r_begin, r_end).
template <typename T>
cudaError_t DequantizeRows(const QuantizedWeightView& w, int64_t r_begin, int64_t r_end, T* out,
                           cudaStream_t stream);

// q[i, t] = e4m3(x[i, t] / scale[i]), scale[i] = max_t |x[i, t]| / 448 (1 where a row is 0).
template <typename T>
cudaError_t QuantizeRowsToFp8(const T* x, int64_t m, int64_t k, uint8_t* q, float* scale,
                              cudaStream_t stream);

}  // namespace glm4v::cuda
