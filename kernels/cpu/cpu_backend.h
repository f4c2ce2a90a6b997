// The CPU backend: fp32 host tensors, OpenBLAS GEMMs, OpenMP-parallel kernels.
#pragma once

#include "kernels/ops.h"

namespace glm4v {

class CpuBackend : public Backend {
 public:
  absl::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }

  Tensor Empty(DType dtype, Shape shape) override;
  absl::StatusOr<Tensor> Upload(const Tensor& host) override;
  absl::StatusOr<Tensor> Download(const Tensor& device_tensor) override;

 protected:
  void DoLinear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor* y) override;
  void DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) override;
  void DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                   Tensor* y) override;
  void DoGeluInPlace(Tensor* x) override;
  void DoSiluAndMul(const Tensor& x, Tensor* y) override;
  void DoAddInPlace(const Tensor& x, Tensor* acc) override;
  void DoScaleInPlace(float scale, Tensor* x) override;
  void DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) override;
  void DoGatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out) override;
  void DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                  int64_t dst_row) override;
  void DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel, Tensor* cols) override;
  void DoApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim, int rotary_dim,
                   double base) override;
  void DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch, int num_heads,
                   int num_kv_heads, bool causal, float scale, Tensor* out) override;
  void DoWriteKvCache(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                      int layer, PagedKvCache* cache) override;
  void DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                        absl::Span<const PagedSequence> sequences, int num_heads, float scale,
                        Tensor* out) override;
  void DoArgmax(const Tensor& x, std::vector<int32_t>* out) override;
};

}  // namespace glm4v
