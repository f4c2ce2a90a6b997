// absl::Status wrappers for CUDA runtime and cuBLAS(Lt) error codes, carrying file:line.
//
// Kernel launchers in this directory return cudaError_t (their .cu files see only CUDA headers);
// host code turns those into absl::Status at the call site with CUDA_RETURN_IF_ERROR.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"

namespace glm4v::cuda {

absl::Status CudaErrorToStatus(cudaError_t err, const char* expr, const char* file, int line);
absl::Status CublasErrorToStatus(cublasStatus_t err, const char* expr, const char* file,
                                 int line);

}  // namespace glm4v::cuda

#define CUDA_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                    \
    cudaError_t glm4v_cuda_err_ = (expr);                                                 \
    if (glm4v_cuda_err_ != cudaSuccess) {                                                 \
      return ::glm4v::cuda::CudaErrorToStatus(glm4v_cuda_err_, #expr, __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(expr)                                                         \
  do {                                                                                       \
    cublasStatus_t glm4v_cublas_err_ = (expr);                                               \
    if (glm4v_cublas_err_ != CUBLAS_STATUS_SUCCESS) {                                        \
      return ::glm4v::cuda::CublasErrorToStatus(glm4v_cublas_err_, #expr, __FILE__, __LINE__); \
    }                                                                                        \
  } while (0)

// The status of an expression, as a value (for code that collects rather than returns errors).
#define CUDA_STATUS(expr) \
  ::glm4v::cuda::CudaErrorToStatus((expr), #expr, __FILE__, __LINE__)
