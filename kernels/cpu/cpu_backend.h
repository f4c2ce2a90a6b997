// The CPU backend: host tensors, f32 activations, OpenBLAS GEMMs, kernels parallel on a small
// thread pool (parallel.h). Weight matrices, embedding tables and the KV cache may also be
// stored in bf16 (converted to f32 on the fly: what tests use to mimic the GPU's rounding);
// bf16 activations are UNIMPLEMENTED.
#pragma once

#include "kernels/ops.h"

namespace glm4v {

class CpuBackend : public Backend {
 public:
  absl::string_view name() const override { return "cpu"; }
  // Available physical memory (the KV cache lives in host RAM).
  int64_t free_memory_bytes() const override;
  Device device() const override { return Device::kCpu; }
  DType activation_dtype() const override { return DType::kF32; }

  Tensor Empty(DType dtype, Shape shape) override;
  // f32 and i32 come back as views of the tensor, bf16 (and f16) as an f32 copy.
  absl::StatusOr<Tensor> Download(const Tensor& device_tensor) override;

 protected:
  // A view of `host` when it already has the storage dtype, else a converted copy.
  absl::StatusOr<Tensor> DoUpload(const Tensor& host, DType storage) override;
  absl::Status DoZeroFill(Tensor* t) override;
  absl::Status DoWriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                              int64_t offset) override;
  absl::Status DoLinear(const Tensor& x, const LinearWeight& weight, const Tensor* bias, Tensor* y,
                        bool accumulate) override;
  absl::Status DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) override;
  absl::Status DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                           Tensor* y) override;
  absl::Status DoGeluInPlace(Tensor* x) override;
  absl::Status DoSiluAndMul(const Tensor& x, Tensor* y) override;
  absl::Status DoAddInPlace(const Tensor& x, Tensor* acc) override;
  absl::Status DoScaleInPlace(float scale, Tensor* x) override;
  absl::Status DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) override;
  absl::Status DoGatherRows(const Tensor& table, const Tensor& rows, Tensor* out) override;
  absl::Status DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                          int64_t dst_row) override;
  absl::Status DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                             Tensor* cols) override;
  absl::Status DoApplyRope(Tensor* x, const Tensor& positions, int head_dim, int rotary_dim,
                           double base) override;
  absl::Status DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                           int num_heads, int num_kv_heads, bool causal, float scale,
                           Tensor* out) override;
  absl::Status DoWriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots, int layer,
                              PagedKvCache* cache) override;
  absl::Status DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                const PagedBatch& batch, int num_heads, float scale,
                                Tensor* out, Tensor* lse) override;
  absl::Status DoArgmax(const Tensor& x, std::vector<int32_t>* out) override;
};

}  // namespace glm4v
