#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/norms.h"

namespace glm4v::cuda {
namespace {

// One block per row. The row is read from global memory once per pass; the passes after the
// first hit L1/L2 (rows are at most a few tens of KB).
template <typename T>
__global__ void RmsNormKernel(const T* x, T* residual, const T* weight, float eps, int64_t cols,
                              T* y) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  T* rr = residual != nullptr ? residual + row * cols : nullptr;
  T* yr = y + row * cols;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = ToFloat(xr[c]);
    if (rr != nullptr) {
      // Round the sum to T before squaring: the stored residual is what later layers see.
      const T sum = FromFloat<T>(v + ToFloat(rr[c]));
      rr[c] = sum;
      v = ToFloat(sum);
    }
    ss += v * v;
  }
  ss = BlockSum(ss, scratch);
  const float inv = rsqrtf(ss / static_cast<float>(cols) + eps);
  const T* src = rr != nullptr ? rr : xr;
  // Each thread re-reads exactly the elements it wrote above, so no barrier is needed.
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    yr[c] = FromFloat<T>(ToFloat(src[c]) * inv * ToFloat(weight[c]));
  }
}

template <typename T>
__global__ void LayerNormKernel(const T* x, const T* weight, const T* bias, float eps,
                                int64_t cols, T* y, T* residual) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += ToFloat(xr[c]);
  const float mean = BlockSum(sum, scratch) / static_cast<float>(cols);
  // Two-pass variance: no cancellation for rows with a large mean.
  float sq = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = ToFloat(xr[c]) - mean;
    sq += d * d;
  }
  const float inv = rsqrtf(BlockSum(sq, scratch) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = (ToFloat(xr[c]) - mean) * inv * ToFloat(weight[c]) + ToFloat(bias[c]);
    if (residual != nullptr) {
      T* rr = residual + row * cols;
      rr[c] = FromFloat<T>(ToFloat(rr[c]) + v);
    } else {
      y[row * cols + c] = FromFloat<T>(v);
    }
  }
}

int ThreadsFor(int64_t cols) {
  int t = 32;
  while (t < 1024 && t * 4 < cols) t *= 2;  // ~4+ elements per thread, up to 1024 threads
  return t;
}

}  // namespace

template <typename T>
cudaError_t RmsNorm(const T* x, T* residual, const T* weight, float eps, int64_t rows,
                    int64_t cols, T* y, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows > 0x7fffffff) return cudaErrorInvalidValue;
  RmsNormKernel<T><<<static_cast<unsigned>(rows), ThreadsFor(cols), 0, stream>>>(
      x, residual, weight, eps, cols, y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LayerNorm(const T* x, const T* weight, const T* bias, float eps, int64_t rows,
                      int64_t cols, T* y, T* residual, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows > 0x7fffffff) return cudaErrorInvalidValue;
  LayerNormKernel<T><<<static_cast<unsigned>(rows), ThreadsFor(cols), 0, stream>>>(
      x, weight, bias, eps, cols, y, residual);
  return cudaGetLastError();
}

template cudaError_t RmsNorm<float>(const float*, float*, const float*, float, int64_t, int64_t,
                                    float*, cudaStream_t);
template cudaError_t RmsNorm<bf16>(const bf16*, bf16*, const bf16*, float, int64_t, int64_t,
                                   bf16*, cudaStream_t);
template cudaError_t LayerNorm<float>(const float*, const float*, const float*, float, int64_t,
                                      int64_t, float*, float*, cudaStream_t);
template cudaError_t LayerNorm<bf16>(const bf16*, const bf16*, const bf16*, float, int64_t,
                                     int64_t, bf16*, bf16*, cudaStream_t);

}  // namespace glm4v::cuda
