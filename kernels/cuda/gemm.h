// Row-major GEMMs on cuBLASLt with the layout of an HF Linear layer:
//   y[m, n] = alpha * sum_k x[m, k] * w[n, k] (+ bias[n]) (+ beta * y[m, n])
// x, w and y may be bf16 or f32 (x and w of the same type); accumulation is always fp32.
// The algorithm chosen by cuBLASLt's heuristic is cached per (shape, types, epilogue, pointer
// alignment), so the heuristic runs once per shape; the workspace is owned by the GemmRunner.
// Pointers need only be aligned to their element size: the plan asks cuBLASLt for algorithms
// that accept the alignment actually seen (row slices of activations may be less than the
// 256 bytes cuBLASLt assumes by default).
//
// Epilogues: bias is fused. GELU is NOT taken from cuBLASLt (its GELU epilogue is the tanh
// approximation; the model needs exact erf GELU), see elementwise.h BiasGelu. A residual add
// is fused through beta = 1 with y holding the residual (y may not alias x or w).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/dtype.h"

namespace glm4v::cuda {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  DType in_type = DType::kBF16;   // x and w
  DType out_type = DType::kBF16;  // y and bias
  const void* x = nullptr;        // [m, k], leading dimension k
  const void* w = nullptr;        // [n, k], leading dimension k
  const void* bias = nullptr;     // [n] of out_type, or null
  void* y = nullptr;              // [m, n], leading dimension ldy (0 = n)
  int64_t ldy = 0;
  float alpha = 1.f;
  float beta = 0.f;               // 1: accumulate into y (fused residual add)
  // fp8 (sm_90+): x and w are e4m3 bytes (in_type ignored) and each product (i, j) is scaled by
  // x_scales[i] * w_scales[j] (cuBLASLt's outer-vector scaling, per token and per channel).
  bool fp8 = false;
  const float* x_scales = nullptr;  // [m], device
  const float* w_scales = nullptr;  // [n], device
};

class GemmRunner {
 public:
  GemmRunner() = default;
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  // Creates the cuBLASLt handle and a workspace on the current device.
  absl::Status Init(size_t workspace_bytes = 32u << 20);
  // `allow_new_plan` false: FAILED_PRECONDITION instead of running the heuristic when the plan
  // is not cached yet (inside a CUDA graph capture, whose eager warm-up made every plan).
  absl::Status Run(const GemmArgs& args, cudaStream_t stream, bool allow_new_plan = true);

  size_t cached_plans() const;

 private:
  struct Key {
    int64_t m, n, k, ldy;
    DType in_type, out_type;
    bool bias, beta_nonzero, fp8;
    uint32_t align_x, align_w, align_y, align_bias;  // bytes, power of two <= 256
    template <typename H>
    friend H AbslHashValue(H h, const Key& key) {
      return H::combine(std::move(h), key.m, key.n, key.k, key.ldy, key.in_type, key.out_type,
                        key.bias, key.beta_nonzero, key.fp8, key.align_x, key.align_w, key.align_y,
                        key.align_bias);
    }
    bool operator==(const Key& o) const {
      return std::tie(m, n, k, ldy, in_type, out_type, bias, beta_nonzero, fp8, align_x,
                      align_w, align_y, align_bias) ==
             std::tie(o.m, o.n, o.k, o.ldy, o.in_type, o.out_type, o.bias, o.beta_nonzero, o.fp8,
                      o.align_x, o.align_w, o.align_y, o.align_bias);
    }
  };
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  absl::Status MakePlan(const Key& key, Plan* plan);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<Key, Plan> plans_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v::cuda
