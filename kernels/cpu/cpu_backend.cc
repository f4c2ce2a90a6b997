#include "kernels/cpu/cpu_backend.h"

#include <cstring>

#include "absl/status/status.h"
#include "kernels/cpu/cpu_kernels.h"

namespace glm4v {

Tensor CpuBackend::Empty(DType dtype, Shape shape) { return Tensor::Empty(dtype, std::move(shape)); }

absl::StatusOr<Tensor> CpuBackend::Upload(const Tensor& host) {
  if (!host.defined() || host.device() != Device::kCpu) {
    return absl::InvalidArgumentError("Upload: need a defined host tensor");
  }
  if (host.dtype() == DType::kF32 && host.is_contiguous()) return host;
  return host.ToF32();
}

absl::StatusOr<Tensor> CpuBackend::Download(const Tensor& device_tensor) {
  return Upload(device_tensor);
}

void CpuBackend::DoLinear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor* y) {
  cpu::Linear(x.data<float>(), weight.data<float>(),
              bias == nullptr ? nullptr : bias->data<float>(), x.dim(0), weight.dim(0), x.dim(1),
              y->data<float>());
}

void CpuBackend::DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) {
  cpu::RmsNorm(x.data<float>(), weight.data<float>(), x.dim(0), x.dim(1), eps, y->data<float>());
}

void CpuBackend::DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             float eps, Tensor* y) {
  cpu::LayerNorm(x.data<float>(), weight.data<float>(), bias.data<float>(), x.dim(0), x.dim(1),
                 eps, y->data<float>());
}

void CpuBackend::DoGeluInPlace(Tensor* x) { cpu::Gelu(x->data<float>(), x->numel()); }

void CpuBackend::DoSiluAndMul(const Tensor& x, Tensor* y) {
  cpu::SiluAndMul(x.data<float>(), x.dim(0), y->dim(1), y->data<float>());
}

void CpuBackend::DoAddInPlace(const Tensor& x, Tensor* acc) {
  cpu::Add(x.data<float>(), x.numel(), acc->data<float>());
}

void CpuBackend::DoScaleInPlace(float scale, Tensor* x) {
  cpu::Scale(scale, x->numel(), x->data<float>());
}

void CpuBackend::DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  int64_t col = 0;
  for (Tensor* part : parts) {
    cpu::CopyColumns(x.data<float>(), x.dim(0), x.dim(1), col, part->dim(1), part->data<float>());
    col += part->dim(1);
  }
}

void CpuBackend::DoGatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out) {
  cpu::GatherRows(table.data<float>(), table.dim(1), rows, out->data<float>());
}

void CpuBackend::DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                            int64_t dst_row) {
  const int64_t cols = src.dim(0) == 0 ? 0 : src.numel() / src.dim(0);
  std::memcpy(dst->data<float>() + dst_row * cols, src.data<float>() + src_row * cols,
              num_rows * cols * sizeof(float));
}

void CpuBackend::DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                               Tensor* cols) {
  const bool first = layout == ImageLayout::kChannelsFirst;
  cpu::PatchIm2Col(image.data<float>(), image.dim(0), first ? image.dim(1) : image.dim(3),
                   first ? image.dim(2) : image.dim(1), first ? image.dim(3) : image.dim(2),
                   layout, kernel, cols->data<float>());
}

void CpuBackend::DoApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                             int rotary_dim, double base) {
  cpu::ApplyRope(x->data<float>(), x->dim(0), x->dim(1) / head_dim, head_dim, rotary_dim,
                 positions.data(), base);
}

void CpuBackend::DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                             int num_heads, int num_kv_heads, bool causal, float scale,
                             Tensor* out) {
  cpu::Attention(q.data<float>(), k.data<float>(), v.data<float>(), batch, q.dim(0) / batch,
                 num_heads, num_kv_heads, static_cast<int>(q.dim(1) / num_heads), causal, scale,
                 out->data<float>());
}

void CpuBackend::DoWriteKvCache(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                                int layer, PagedKvCache* cache) {
  cpu::WriteKvCache(k.data<float>(), v.data<float>(), slots, layer, cache);
}

void CpuBackend::DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                  absl::Span<const PagedSequence> sequences, int num_heads,
                                  float scale, Tensor* out) {
  cpu::PagedAttention(q.data<float>(), cache, layer, sequences, num_heads, scale,
                      out->data<float>());
}

void CpuBackend::DoArgmax(const Tensor& x, std::vector<int32_t>* out) {
  out->resize(x.dim(0));
  cpu::Argmax(x.data<float>(), x.dim(0), x.dim(1), out->data());
}

}  // namespace glm4v
