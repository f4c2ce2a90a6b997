// Row normalizations (fp32 statistics) on device pointers; T = float or __nv_bfloat16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace glm4v::cuda {

// RMSNorm per row of x [rows, cols]: y = x * rsqrt(mean(x^2) + eps) * weight.
// With `residual` non-null the residual add is fused in front:
//   residual += x;  y = RMSNorm(residual)   (the decoder's "x = x + out; h = norm(x)").
// y may alias x (not residual).
template <typename T>
cudaError_t RmsNorm(const T* x, T* residual, const T* weight, float eps, int64_t rows,
                    int64_t cols, T* y, cudaStream_t stream);

// LayerNorm per row: y = (x - mean) * rsqrt(var + eps) * weight + bias (biased variance).
// With `residual` non-null: residual += LayerNorm(x) is written instead of y (the vision
// tower's post-sublayer norm "x = x + LN(attn(x))"); y is then unused and may be null.
template <typename T>
cudaError_t LayerNorm(const T* x, const T* weight, const T* bias, float eps, int64_t rows,
                      int64_t cols, T* y, T* residual, cudaStream_t stream);

}  // namespace glm4v::cuda
