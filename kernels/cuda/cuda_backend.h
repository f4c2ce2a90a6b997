// The CUDA implementation of the Backend op interface (kernels/ops.h): the serving fast path.
//
// Dtypes. Activations are bf16 (activation_dtype()); every op also runs on f32 activations (the
// op tests). Per op (x = activations, "T" = f32 or bf16):
//   Upload            host f32/bf16/f16 -> device f32 or bf16 (bf16 -> bf16 is a plain copy);
//                     host i32 -> device i32. Download: f32/bf16/f16 -> host f32, i32 stays.
//   Linear            (x, w, y) = (f32, f32, f32), (bf16, bf16, bf16), (bf16, bf16, f32 logits)
//                     on cuBLASLt (fp32 accumulation; bias of y's dtype fused in the epilogue,
//                     `accumulate` as beta = 1), and (f32, bf16, f32) by widening w into scratch
//                     (tests only: a full weight conversion per call). Others: UNIMPLEMENTED.
//   norms, GELU, SiLU*mul, add, scale, im2col, RoPE: T in, T out (fp32 math).
//   GatherRows        table T -> out T; a table of the other float dtype gathers into scratch
//                     and converts. CopyRows: same dtype is a memcpy, f32 <-> bf16 converts.
//   WriteKvCache      k/v T into a device cache of f32 or bf16 (any of the four pairs); a
//                     negative slot skips its row.
//   Attention /       bf16 K/V with head_dim 64/80/96/112/128: tensor-core flash attention
//   PagedAttention    (attention.h; f32 q/out are converted through bf16 scratch), paged
//                     straight from the cache through PagedBatch (no gather, no host copy).
//                     Anything else (f32 K/V or cache, other head dims <= 256, misaligned
//                     views): the fp32 kernel of attention_generic.h, paged or contiguous.
//   Argmax            T logits (synchronizes: the ids come back to the host).
//
// Ordering. Every op, allocation and free is enqueued on the backend's one non-blocking stream
// (stream()), so ops, stream-ordered frees and graph replays never race. Host -> device copies
// (Upload, WriteIndices, the host-span op forms) go through a pinned staging ring: they return
// without waiting for the stream and the source may be reused at once; only uploads larger
// than 2 MiB (weights) wait for the stream.
//
// Errors. Do* return argument and launch errors directly. What is truly asynchronous is kept
// as a sticky error returned (once) by Synchronize() / Download(): kernel faults, and a failed
// Empty() (which can only return an undefined tensor; inside a RunCaptured step it fails the
// RunCaptured call instead).
//
// CUDA graphs (RunCaptured, captures_steps() = true). Per key:
//   1st call: runs `step` eagerly (GEMM plans get cached, lazily loaded kernels load) while a
//             virtual ScratchArena (device_memory.h) mirrors every allocation and free the step
//             makes through Empty() (256-byte granules, first fit, freed blocks reused): its
//             peak is the scratch the step needs.
//   2nd call: reserves a ScratchArena of that peak (+ 1/8 + 1 MiB), then captures `step` on
//             stream() (cudaStreamBeginCapture, thread-local mode) with Empty() on this thread
//             served from the arena (the same allocation sequence lands on the same offsets;
//             reuse is safe because a one-stream capture is a chain), instantiates and launches.
//   later:    replays the graph; `step` is not called. The arena lives as long as the graph
//             (ClearCaptured() or destruction), and at least as long as its tensors.
// A captured step must only enqueue device work: Upload/Download/Synchronize/WriteIndices/
// Argmax and the host-span op forms (which upload) fail with FAILED_PRECONDITION inside `step`
// (already in the eager first call) and the key stays uncaptured; a GEMM shape that the eager
// run did not plan fails the capture the same way. A failed capture forgets the measurement.
// The grid of a replayed attention is the one of the capture: PagedBatch::max_num_queries must
// bound the replayed contents (max_kv_len only picks the split count; same value per key
// keeps the scratch size stable).
//
// Threads. Ops may be called from several threads (they serialize on the stream). RunCaptured
// is not reentrant (FAILED_PRECONDITION from inside a step) and calls are serialized. While a
// capture is in progress, every backend call from OTHER threads (ops, Empty, Upload, ...)
// waits for it to end, and frees of device tensors are deferred until it has ended, so nothing
// foreign lands in the graph; `step` itself must therefore make all its backend calls on the
// calling thread.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_graph.h"
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
  DType activation_dtype() const override { return DType::kBF16; }

  // Uninitialized device tensor; undefined (and a sticky error) when allocation fails.
  Tensor Empty(DType dtype, Shape shape) override;
  // Device f32/bf16/f16 -> host f32, i32 (and other integer dtypes) as they are. Waits for the
  // stream; returns the sticky error first if there is one.
  absl::StatusOr<Tensor> Download(const Tensor& device_tensor) override;
  // Waits for the stream; returns (and clears) the first asynchronous error since the last call.
  absl::Status Synchronize() override;
  absl::Status BindCallingThread() override;

  bool captures_steps() const override { return true; }
  bool samples_on_device() const override { return true; }
  // cudaMemGetInfo's free bytes on this backend's device.
  int64_t free_memory_bytes() const override;
  absl::Status RunCaptured(int64_t key, absl::FunctionRef<absl::Status()> step) override;
  // Waits for replays in flight, then drops every graph and its scratch arena.
  void ClearCaptured() override;

  // Device access for the typed API (tools/bench, worker/tp's NCCL collectives).
  cudaStream_t stream() const { return stream_; }
  GemmRunner& gemm() { return gemm_; }
  DeviceAllocator& allocator() { return *allocator_; }
  int device_ordinal() const { return device_; }
  int num_sms() const { return num_sms_; }

  // Keys with a captured graph, and the device bytes their scratch arenas reserve.
  size_t num_captured() const;
  size_t captured_scratch_bytes() const;

 protected:
  absl::StatusOr<Tensor> DoUpload(const Tensor& host, DType storage) override;
  absl::Status DoZeroFill(Tensor* t) override;
  absl::Status DoWriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                              int64_t offset) override;
  absl::Status DoLinear(const Tensor& x, const LinearWeight& weight_in, const Tensor* bias, Tensor* y,
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
  // cuda_backend_sampling.cc
  absl::StatusOr<SampledRows> DoSampleRows(Tensor* logits,
                                           const SamplingBatchHost& batch) override;

 private:
  enum class StepMode { kNone, kMeasuring, kCapturing };
  struct Captured {
    size_t scratch_bytes = 0;               // measured by the eager first call
    std::shared_ptr<ScratchArena> arena;    // set once the graph exists
  };
  // K/V operands and sequence layout of one attention call (contiguous or paged).
  struct AttnInputs {
    const void* k = nullptr;
    const void* v = nullptr;
    DType kv_dtype = DType::kBF16;
    int64_t kv_stride = 0;
    const int32_t* block_tables = nullptr;  // null: contiguous
    int block_size = 0;
    const AttnSequence* seqs = nullptr;
    int num_seqs = 0;
    int max_num_q = 0;
    int max_kv_len = 0;
    int num_kv_heads = 0;
    bool causal = false;
    ContextShare share;     // paged only
    float* lse = nullptr;   // f32 [rows, num_heads] or null
  };
  class StreamUse;

  CudaBackend(int device, cudaStream_t stream, DeviceAllocator* allocator, int num_sms);

  // Linear with int8 / int4 / fp8 weights (quantized_linear.h): GEMV up to
  // kQuantizedGemvMaxRows rows, else fp8 tensor cores (sm_90+, bf16 x) or dequantized panels
  // through cuBLASLt.
  absl::Status LinearQuantized(const Tensor& x, const LinearWeight& w, const Tensor* bias,
                               Tensor* y, bool accumulate);

  // The one allocation path (Empty() and every internal scratch buffer): the caching
  // allocator, mirrored in the virtual arena while measuring a step, or the key's arena while
  // capturing one (only for the thread running the step).
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape);
  // FAILED_PRECONDITION (also recorded against the step) when this thread is running a step
  // of RunCaptured: `what` synchronizes or copies between host and device.
  absl::Status CheckNotInStep(absl::string_view what);
  bool OnStepThread() const;
  bool CapturingOnThisThread() const;
  void BeginStep(StepMode mode, std::shared_ptr<ScratchArena> arena);
  // Ends the step; returns the first violation recorded during it.
  absl::Status EndStep();
  absl::Status StepViolation() const;
  // Records `status` as the sticky error if it is the first one (and against the step).
  void Note(absl::Status status);
  // Waits for the stream and returns (and clears) the sticky error.
  absl::Status SyncAndTakeError();
  // Host -> device bytes on the stream; `src` may be reused on return (HostStagingRing).
  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes);
  absl::Status RunAttention(const Tensor& q, const AttnInputs& in, int num_heads, float scale,
                            Tensor* out);

  const int device_;
  const cudaStream_t stream_;
  std::unique_ptr<DeviceAllocator> allocator_;
  const int num_sms_;
  int compute_major_ = 0;  // 9: Hopper (fp8 GEMMs with per-channel and per-token scales)
  GemmRunner gemm_;
  std::unique_ptr<HostStagingRing> staging_;

  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> step_active_{false};  // fast path of OnStepThread()
  StepMode step_mode_ ABSL_GUARDED_BY(mu_) = StepMode::kNone;
  std::thread::id step_thread_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ScratchArena> step_arena_ ABSL_GUARDED_BY(mu_);
  absl::Status step_violation_ ABSL_GUARDED_BY(mu_);

  // Writer: a capture in progress. Reader: another thread's backend call (see StreamUse).
  absl::Mutex capture_mu_;
  // Serializes RunCaptured and ClearCaptured.
  mutable absl::Mutex run_mu_;
  CudaGraphCache graphs_ ABSL_GUARDED_BY(run_mu_);
  absl::flat_hash_map<int64_t, Captured> captured_ ABSL_GUARDED_BY(run_mu_);
};

// The process-wide CUDA backend on device 0 (created on first use); the hook for
// kernels/backends.cc to register "cuda".
absl::StatusOr<Backend*> GetCudaBackend();

}  // namespace glm4v::cuda
