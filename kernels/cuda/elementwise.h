// Elementwise and data-movement kernels on device pointers, for T = float or __nv_bfloat16
// (fp32 math inside). Every launcher enqueues on `stream` and returns the launch error.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace glm4v::cuda {

// y = 0.5 x (1 + erf(x / sqrt 2)) (exact GELU; y may equal x).
template <typename T>
cudaError_t Gelu(const T* x, T* y, int64_t n, cudaStream_t stream);
// x [rows, 2 * half] split a | b -> y [rows, half] = silu(a) * b.
template <typename T>
cudaError_t SiluAndMul(const T* x, T* y, int64_t rows, int64_t half, cudaStream_t stream);
// acc += x.
template <typename T>
cudaError_t Add(const T* x, T* acc, int64_t n, cudaStream_t stream);
// acc[r, :] += table[r % period, :] for acc [rows, cols] (position embeddings of a batch).
template <typename T>
cudaError_t AddPeriodicRows(const T* table, int64_t period, T* acc, int64_t rows, int64_t cols,
                            cudaStream_t stream);
// x *= scale.
template <typename T>
cudaError_t Scale(T* x, int64_t n, float scale, cudaStream_t stream);
// Type conversions (round to nearest even for bf16).
cudaError_t F32ToBF16(const float* x, __nv_bfloat16* y, int64_t n, cudaStream_t stream);
cudaError_t BF16ToF32(const __nv_bfloat16* x, float* y, int64_t n, cudaStream_t stream);
// out[i, :] = table[ids[i], :] for i < rows; ids on the device. Out-of-range ids give zero rows
// (validated on the host when ids come from there).
template <typename T>
cudaError_t GatherRows(const T* table, int64_t table_rows, int64_t cols, const int32_t* ids,
                       int64_t rows, T* out, cudaStream_t stream);
// Convolution with kernel == stride as a GEMM input: patches of `image` into
// cols [b * (h/k) * (w/k), c * k * k], rows ordered (b, py, px), columns (channel, ky, kx).
// channels_last: image is [b, h, w, c]; else [b, c, h, w].
template <typename T>
cudaError_t PatchIm2Col(const T* image, bool channels_last, int64_t batch, int64_t channels,
                        int64_t height, int64_t width, int kernel, T* cols, cudaStream_t stream);

// x[i] = scale * u(seed, i) with u uniform in [-1, 1) from a counter-based hash (random weights
// for benchmarks and tests; deterministic per seed).
template <typename T>
cudaError_t FillUniform(T* x, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace glm4v::cuda
