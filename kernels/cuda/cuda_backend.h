// The CUDA implementation of the Backend op interface (kernels/ops.h).
//
// The interface is f32 today, so this backend keeps f32 device tensors and runs f32 kernels,
// fp32 cuBLASLt GEMMs, and bf16 tensor-core attention (q/k/v converted on the fly). The KV cache
// of the interface is host memory (model/kv_cache.h), so WriteKvCache / PagedAttention move
// rows across PCIe: correct, not fast. The serving fast path (bf16 weights and activations,
// device KV cache, fused kernels, CUDA graphs) uses the typed API in this directory directly;
// kernels/cuda/INTERFACE_NOTES.md proposes the interface changes that merge the two.
//
// Errors: Do* methods cannot return a status, so the first CUDA error of an op is kept
// ("sticky") and returned by Synchronize(); ops after an error still validate but may compute
// garbage. Call Synchronize() at step boundaries.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/gemm.h"
#include "kernels/ops.h"

namespace glm4v::cuda {

class CudaBackend : public Backend {
 public:
  // Creates a backend on `device` with its own non-blocking stream. FAILED_PRECONDITION when
  // there is no CUDA device.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(int device = 0);
  ~CudaBackend() override;

  absl::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::kCuda; }

  // Uninitialized device tensor; undefined (and a sticky error) when allocation fails.
  Tensor Empty(DType dtype, Shape shape) override;
  // Host tensor of any float dtype -> device f32 (the interface's dtype).
  absl::StatusOr<Tensor> Upload(const Tensor& host) override;
  // Device f32/bf16/i32 -> host f32 (i32 stays i32). Synchronizes the stream.
  absl::StatusOr<Tensor> Download(const Tensor& device_tensor) override;

  // Beyond the interface: host f32/bf16 -> device bf16 (weights for the fast path, uploaded
  // once), and device access for the typed API.
  absl::StatusOr<Tensor> UploadBF16(const Tensor& host);
  // Waits for the stream and returns (and clears) the first error since the last call.
  absl::Status Synchronize();
  cudaStream_t stream() const { return stream_; }
  GemmRunner& gemm() { return gemm_; }
  DeviceAllocator& allocator() { return *allocator_; }
  int device_ordinal() const { return device_; }
  int num_sms() const { return num_sms_; }

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

 private:
  CudaBackend(int device, cudaStream_t stream, DeviceAllocator* allocator, int num_sms);

  // Records `status` as the sticky error if it is the first one.
  void Note(absl::Status status);
  // Host int32 values -> a new device i32 tensor.
  absl::StatusOr<Tensor> UploadI32(absl::Span<const int32_t> values);
  // Device f32 -> new device bf16 and back.
  absl::StatusOr<Tensor> ToBF16(const Tensor& x);
  absl::Status FromBF16(const Tensor& x_bf16, Tensor* out_f32);
  absl::Status RunAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                            const std::vector<AttnSequence>& seqs, int max_num_q,
                            int max_kv_len, int num_heads, int num_kv_heads, bool causal,
                            float scale, Tensor* out);

  int device_;
  cudaStream_t stream_;
  std::unique_ptr<DeviceAllocator> allocator_;
  int num_sms_;
  GemmRunner gemm_;
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// The process-wide CUDA backend on device 0 (created on first use); the hook for
// kernels/backends.cc to register "cuda".
absl::StatusOr<Backend*> GetCudaBackend();

}  // namespace glm4v::cuda
