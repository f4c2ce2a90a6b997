#include <cuda_runtime.h>

#include "kernels/cuda/device_info.h"

namespace glm4v::cuda {
namespace {

__global__ void AddScalarKernel(float* x, int n, float value) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += value;
}

}  // namespace

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string NoDeviceReason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  return n == 0 ? "no CUDA device: cudaGetDeviceCount() == 0" : "";
}

bool AddScalarOnDevice(float* host, int n, float value, std::string* error) {
  float* dev = nullptr;
  auto fail = [&](cudaError_t err) {
    *error = cudaGetErrorString(err);
    if (dev != nullptr) cudaFree(dev);
    return false;
  };
  cudaError_t err = cudaMalloc(&dev, sizeof(float) * n);
  if (err != cudaSuccess) return fail(err);
  if ((err = cudaMemcpy(dev, host, sizeof(float) * n, cudaMemcpyHostToDevice)) != cudaSuccess) return fail(err);
  AddScalarKernel<<<(n + 255) / 256, 256>>>(dev, n, value);
  if ((err = cudaGetLastError()) != cudaSuccess) return fail(err);
  if ((err = cudaMemcpy(host, dev, sizeof(float) * n, cudaMemcpyDeviceToHost)) != cudaSuccess) return fail(err);
  cudaFree(dev);
  return true;
}

}  // namespace glm4v::cuda
