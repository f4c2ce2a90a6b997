#include "kernels/cuda/cuda_backend.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_generic.h"
#include "kernels/cuda/cuda_backend_internal.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/quantized_linear.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"

namespace glm4v::cuda {
namespace {

using bf16 = __nv_bfloat16;

int64_t Rows(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(0); }
int64_t Cols(const Tensor& t) { return Rows(t) == 0 ? 0 : t.numel() / Rows(t); }

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<float>) or fn(TypeTag<bf16>) for a float dtype.
template <typename Fn>
absl::Status ByFloatType(DType dtype, absl::string_view op, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      return fn(TypeTag<float>{});
    case DType::kBF16:
      return fn(TypeTag<bf16>{});
    default:
      return absl::UnimplementedError(
          absl::StrCat("CUDA ", op, ": dtype ", std::string(DTypeName(dtype))));
  }
}

std::string Name(DType d) { return std::string(DTypeName(d)); }

// Pinned staging for host -> device copies (per-step indices are a few KB).
constexpr size_t kStagingBytes = size_t{4} << 20;

// PagedBatch::sequences rows are read by the kernels as AttnSequence.
static_assert(offsetof(AttnSequence, q_begin) == 0 && offsetof(AttnSequence, num_q) == 4 &&
                  offsetof(AttnSequence, kv_len) == 8 && offsetof(AttnSequence, kv_begin) == 12,
              "AttnSequence must match PagedBatch::sequences (query_begin, num_queries, kv_len, "
              "table_begin)");

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return absl::FailedPreconditionError(absl::StrCat(
        "no CUDA device: ", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device ", device, " of ", count));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  int num_sms = 0;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device));
  cudaStream_t stream;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  absl::StatusOr<DeviceAllocator*> alloc = DeviceAllocator::Create(device, stream);
  if (!alloc.ok()) {
    cudaStreamDestroy(stream);
    return alloc.status();
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend(device, stream, *alloc, num_sms));
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&backend->compute_major_,
                                              cudaDevAttrComputeCapabilityMajor, device));
  RETURN_IF_ERROR(backend->gemm_.Init());
  ASSIGN_OR_RETURN(backend->staging_, HostStagingRing::Create(kStagingBytes, stream));
  return backend;
}

CudaBackend::CudaBackend(int device, cudaStream_t stream, DeviceAllocator* allocator,
                         int num_sms)
    : device_(device), stream_(stream), allocator_(allocator), num_sms_(num_sms) {}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(stream_);
  {
    absl::MutexLock lock(&run_mu_);
    graphs_.Clear();
    captured_.clear();
  }
  staging_.reset();
  // Tensors still alive free on this stream later; leak the stream rather than invalidate them.
  allocator_.release();
}

// ---- step state (RunCaptured)

bool CudaBackend::OnStepThread() const {
  if (!step_active_.load(std::memory_order_acquire)) return false;
  absl::MutexLock lock(&mu_);
  return step_mode_ != StepMode::kNone && step_thread_ == std::this_thread::get_id();
}

bool CudaBackend::CapturingOnThisThread() const {
  if (!step_active_.load(std::memory_order_acquire)) return false;
  absl::MutexLock lock(&mu_);
  return step_mode_ == StepMode::kCapturing && step_thread_ == std::this_thread::get_id();
}

void CudaBackend::BeginStep(StepMode mode, std::shared_ptr<ScratchArena> arena) {
  absl::MutexLock lock(&mu_);
  step_mode_ = mode;
  step_thread_ = std::this_thread::get_id();
  step_arena_ = std::move(arena);
  step_violation_ = absl::OkStatus();
  step_active_.store(true, std::memory_order_release);
}

absl::Status CudaBackend::EndStep() {
  absl::MutexLock lock(&mu_);
  step_active_.store(false, std::memory_order_release);
  step_mode_ = StepMode::kNone;
  step_thread_ = std::thread::id();
  step_arena_.reset();
  return std::exchange(step_violation_, absl::OkStatus());
}

absl::Status CudaBackend::StepViolation() const {
  absl::MutexLock lock(&mu_);
  return step_violation_;
}

absl::Status CudaBackend::CheckNotInStep(absl::string_view what) {
  if (!step_active_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (step_mode_ == StepMode::kNone || step_thread_ != std::this_thread::get_id()) {
    return absl::OkStatus();
  }
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(
      what, " inside a step run by RunCaptured: a captured step may only enqueue device work "
            "(no synchronization, no host<->device copies; fill index tensors with "
            "WriteIndices before RunCaptured and use the tensor forms of the ops)"));
  if (step_violation_.ok()) step_violation_ = status;
  return status;
}

void CudaBackend::Note(absl::Status status) {
  if (status.ok()) return;
  absl::MutexLock lock(&mu_);
  if (step_mode_ != StepMode::kNone && step_thread_ == std::this_thread::get_id()) {
    // Inside a step RunCaptured reports it (and drops the capture); not sticky.
    if (step_violation_.ok()) step_violation_ = std::move(status);
    return;
  }
  if (error_.ok()) error_ = std::move(status);
}

absl::Status CudaBackend::SyncAndTakeError() {
  Note(CUDA_STATUS(cudaStreamSynchronize(stream_)));
  absl::MutexLock lock(&mu_);
  return std::exchange(error_, absl::OkStatus());
}

// ---- memory

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, Shape shape) {
  std::shared_ptr<ScratchArena> arena;
  StepMode mode = StepMode::kNone;
  if (step_active_.load(std::memory_order_acquire)) {
    absl::MutexLock lock(&mu_);
    if (step_mode_ != StepMode::kNone && step_thread_ == std::this_thread::get_id()) {
      arena = step_arena_;
      mode = step_mode_;
    }
  }
  switch (mode) {
    case StepMode::kNone:
      return allocator_->Allocate(dtype, std::move(shape));
    case StepMode::kCapturing:
      return arena->Allocate(dtype, std::move(shape));
    case StepMode::kMeasuring:
      break;
  }
  // Measuring: real memory from the allocator, the same request mirrored in the virtual arena
  // (and given back to it when the tensor dies), so its peak is what the capture will need.
  const int64_t n = NumElements(shape);
  if (n < 0) return absl::InvalidArgumentError("negative shape");
  const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
  ASSIGN_OR_RETURN(const size_t offset, arena->AllocateOffset(bytes));
  absl::StatusOr<void*> ptr = allocator_->AllocateRaw(bytes);
  if (!ptr.ok()) {
    arena->FreeOffset(offset);
    return ptr.status();
  }
  DeviceAllocator* allocator = allocator_.get();
  std::shared_ptr<const void> owner(
      *ptr, [allocator, bytes, arena = std::move(arena), offset](const void* p) {
        allocator->FreeRaw(const_cast<void*>(p), bytes);
        arena->FreeOffset(offset);
      });
  return Tensor::Borrow(dtype, std::move(shape), *ptr, std::move(owner), Device::kCuda);
}

Tensor CudaBackend::Empty(DType dtype, Shape shape) {
  StreamUse use(this);
  absl::StatusOr<Tensor> t = Allocate(dtype, std::move(shape));
  if (!t.ok()) {
    Note(t.status());
    return Tensor();
  }
  return *std::move(t);
}

absl::Status CudaBackend::CopyHostToDevice(void* dst, const void* src, size_t bytes) {
  // Small copies (indices, per-step metadata) are staged through pinned memory: the host does
  // not wait for the stream (no implicit synchronization of a pageable cudaMemcpyAsync), the
  // source may be reused on return, and the copy is ordered on the stream after the work queued
  // before it (e.g. a graph replay still reading the previous step's indices). Large ones
  // (weights) are copied directly and waited for.
  return staging_->Copy(dst, src, bytes);
}

absl::StatusOr<Tensor> CudaBackend::DoUpload(const Tensor& host, DType storage) {
  RETURN_IF_ERROR(CheckNotInStep("Upload"));
  StreamUse use(this);
  Tensor src;
  switch (storage) {
    case DType::kI32:
      src = host;  // validated: an i32 host tensor
      break;
    case DType::kF32:
      src = host.dtype() == DType::kF32 ? host : host.ToF32();
      break;
    case DType::kBF16:
      // bf16 checkpoints go up as they are; f32 rounds once (nearest even) on the host.
      if (host.dtype() == DType::kBF16) {
        src = host;
      } else if (host.dtype() == DType::kF32) {
        src = host.ToBF16();
      } else {
        src = host.ToF32().ToBF16();
      }
      break;
    case DType::kU8:
      src = host;  // validated: a u8 host tensor (quantized weights)
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("CUDA Upload: storage dtype ", Name(storage)));
  }
  if (!src.is_contiguous()) src = src.Clone();
  ASSIGN_OR_RETURN(Tensor dst, allocator_->Allocate(src.dtype(), src.shape()));
  RETURN_IF_ERROR(CopyHostToDevice(dst.raw_data(), src.raw_data(), src.nbytes()));
  return dst;
}

absl::StatusOr<Tensor> CudaBackend::Download(const Tensor& device_tensor) {
  RETURN_IF_ERROR(CheckNotInStep("Download"));
  StreamUse use(this);
  if (!device_tensor.defined() || device_tensor.device() != Device::kCuda) {
    return absl::InvalidArgumentError("Download: not a device tensor");
  }
  RETURN_IF_ERROR(SyncAndTakeError());
  ASSIGN_OR_RETURN(Tensor host, CopyToHost(device_tensor, stream_));
  if (host.dtype() == DType::kBF16 || host.dtype() == DType::kF16) return host.ToF32();
  return host;
}

absl::Status CudaBackend::Synchronize() {
  RETURN_IF_ERROR(CheckNotInStep("Synchronize"));
  StreamUse use(this);
  return SyncAndTakeError();
}

absl::Status CudaBackend::BindCallingThread() {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  return absl::OkStatus();
}

int64_t CudaBackend::free_memory_bytes() const {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaSetDevice(device_) != cudaSuccess ||
      cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    cudaGetLastError();  // not sticky: the caller just gets "unknown"
    return 0;
  }
  return static_cast<int64_t>(free_bytes);
}

absl::Status CudaBackend::DoZeroFill(Tensor* t) {
  StreamUse use(this);
  if (t->nbytes() == 0) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(t->raw_data(), 0, t->nbytes(), stream_));
  return absl::OkStatus();
}

absl::Status CudaBackend::DoWriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                                         int64_t offset) {
  RETURN_IF_ERROR(CheckNotInStep("WriteIndices"));
  StreamUse use(this);
  return CopyHostToDevice(dst->data<int32_t>() + offset, values.data(),
                          values.size() * sizeof(int32_t));
}

// ---- dense math

absl::Status CudaBackend::DoLinear(const Tensor& x, const LinearWeight& weight_in,
                                   const Tensor* bias, Tensor* y, bool accumulate) {
  if (weight_in.quantized()) return LinearQuantized(x, weight_in, bias, y, accumulate);
  const Tensor& weight = weight_in.values;
  StreamUse use(this);
  const DType xt = x.dtype(), wt = weight.dtype(), yt = y->dtype();
  GemmArgs args;
  args.m = x.dim(0);
  args.n = weight.dim(0);
  args.k = x.dim(1);
  args.x = x.raw_data();
  args.w = weight.raw_data();
  args.bias = bias != nullptr ? bias->raw_data() : nullptr;
  args.y = y->raw_data();
  args.beta = accumulate ? 1.f : 0.f;
  args.in_type = xt;
  args.out_type = yt;
  if (args.m == 0) return absl::OkStatus();
  // Inside a capture every plan must come from the eager warm-up (no heuristic calls).
  const bool allow_new_plan = !CapturingOnThisThread();
  if (xt == wt && (yt == xt || (xt == DType::kBF16 && yt == DType::kF32))) {
    return gemm_.Run(args, stream_, allow_new_plan);
  }
  if (xt == DType::kF32 && wt == DType::kBF16 && yt == DType::kF32) {
    // bf16 weights under f32 activations (the CPU's mixed mode, used by tests): widen the
    // weight into scratch. Not a serving path: it converts the whole matrix per call.
    ASSIGN_OR_RETURN(Tensor w32, Allocate(DType::kF32, weight.shape()));
    CUDA_RETURN_IF_ERROR(
        BF16ToF32(weight.data<bf16>(), w32.data<float>(), weight.numel(), stream_));
    args.w = w32.raw_data();
    args.in_type = DType::kF32;
    return gemm_.Run(args, stream_, allow_new_plan);
  }
  return absl::UnimplementedError(absl::StrCat("CUDA Linear: x ", Name(xt), ", weight ",
                                               Name(wt), ", y ", Name(yt)));
}

absl::Status CudaBackend::LinearQuantized(const Tensor& x, const LinearWeight& w,
                                         const Tensor* bias, Tensor* y, bool accumulate) {
  StreamUse use(this);
  const DType xt = x.dtype();
  if ((xt != DType::kBF16 && xt != DType::kF32) || y->dtype() != xt ||
      (bias != nullptr && bias->dtype() != xt)) {
    return absl::UnimplementedError(absl::StrCat(
        "CUDA Linear with ", WeightFormatName(w.format), " weights: x, bias and y must all be "
        "bf16 or all f32, got x ", Name(xt), ", y ", Name(y->dtype())));
  }
  cuda::QuantizedWeightView view;
  view.format = w.format == WeightFormat::kInt4  ? cuda::QuantizedFormat::kInt4
                : w.format == WeightFormat::kFp8 ? cuda::QuantizedFormat::kFp8
                                                 : cuda::QuantizedFormat::kInt8;
  view.values = w.values.data<uint8_t>();
  view.scales = w.scales.data<float>();
  view.zeros = w.zeros.defined() ? w.zeros.data<uint8_t>() : nullptr;
  view.n = w.out_features();
  view.k = w.in;
  const int64_t m = x.dim(0), n = view.n, k = view.k;
  if (m == 0) return absl::OkStatus();
  const bool allow_new_plan = !CapturingOnThisThread();
  return ByFloatType(xt, "Linear", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    const T* bp = bias != nullptr ? bias->data<T>() : nullptr;
    T* yp = y->data<T>();
    if (m <= cuda::kQuantizedGemvMaxRows) {
      CUDA_RETURN_IF_ERROR(cuda::QuantizedGemv<T>(xp, m, view, bp, accumulate, yp, stream_));
      return absl::OkStatus();
    }
    GemmArgs args;
    args.m = m;
    args.k = k;
    args.in_type = xt;
    args.out_type = xt;
    args.beta = accumulate ? 1.f : 0.f;
    if (w.format == WeightFormat::kFp8 && xt == DType::kBF16 && compute_major_ >= 9 &&
        k % 16 == 0) {
      // Hopper: x rounded to e4m3 per row, both operands on the fp8 tensor cores, the
      // per-token and per-channel scales applied by cuBLASLt.
      ASSIGN_OR_RETURN(Tensor xq, Allocate(DType::kU8, {m, k}));
      ASSIGN_OR_RETURN(Tensor xs, Allocate(DType::kF32, {m}));
      CUDA_RETURN_IF_ERROR(cuda::QuantizeRowsToFp8<T>(xp, m, k, xq.data<uint8_t>(),
                                                      xs.data<float>(), stream_));
      args.n = n;
      args.fp8 = true;
      args.x = xq.raw_data();
      args.w = view.values;
      args.x_scales = xs.data<float>();
      args.w_scales = view.scales;
      args.bias = bp;
      args.y = yp;
      return gemm_.Run(args, stream_, allow_new_plan);
    }
    // Panels of dequantized rows (<= 64 MiB each) multiplied into their columns of y.
    const int64_t panel_rows =
        std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{64} << 20) / (k * sizeof(T))));
    ASSIGN_OR_RETURN(Tensor panel, Allocate(xt, {panel_rows, k}));
    for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
      const int64_t rows = std::min(panel_rows, n - r0);
      CUDA_RETURN_IF_ERROR(
          cuda::DequantizeRows<T>(view, r0, r0 + rows, panel.data<T>(), stream_));
      args.n = rows;
      args.x = xp;
      args.w = panel.raw_data();
      args.bias = bp != nullptr ? bp + r0 : nullptr;
      args.y = yp + r0;
      args.ldy = n;
      RETURN_IF_ERROR(gemm_.Run(args, stream_, allow_new_plan));
    }
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoRmsNorm(const Tensor& x, const Tensor& weight, float eps,
                                    Tensor* y) {
  StreamUse use(this);
  return ByFloatType(x.dtype(), "RmsNorm", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::RmsNorm<T>(x.data<T>(), nullptr, weight.data<T>(), eps, x.dim(0),
                                          x.dim(1), y->data<T>(), stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      float eps, Tensor* y) {
  StreamUse use(this);
  return ByFloatType(x.dtype(), "LayerNorm", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::LayerNorm<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), eps,
                                            x.dim(0), x.dim(1), y->data<T>(), nullptr,
                                            stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoGeluInPlace(Tensor* x) {
  StreamUse use(this);
  return ByFloatType(x->dtype(), "GeluInPlace", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::Gelu<T>(x->data<T>(), x->data<T>(), x->numel(), stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoSiluAndMul(const Tensor& x, Tensor* y) {
  StreamUse use(this);
  return ByFloatType(x.dtype(), "SiluAndMul", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(
        cuda::SiluAndMul<T>(x.data<T>(), y->data<T>(), x.dim(0), y->dim(1), stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoAddInPlace(const Tensor& x, Tensor* acc) {
  StreamUse use(this);
  return ByFloatType(x.dtype(), "AddInPlace", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::Add<T>(x.data<T>(), acc->data<T>(), x.numel(), stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::DoScaleInPlace(float scale, Tensor* x) {
  StreamUse use(this);
  return ByFloatType(x->dtype(), "ScaleInPlace", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::Scale<T>(x->data<T>(), x->numel(), scale, stream_));
    return absl::OkStatus();
  });
}

// ---- data movement

absl::Status CudaBackend::DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  StreamUse use(this);
  const size_t elem = DTypeSize(x.dtype());
  const int64_t rows = x.dim(0), width = x.dim(1);
  int64_t col = 0;
  for (Tensor* part : parts) {
    const int64_t c = part->dim(1);
    if (rows > 0 && c > 0) {
      CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(
          part->raw_data(), c * elem, static_cast<const char*>(x.raw_data()) + col * elem,
          width * elem, c * elem, rows, cudaMemcpyDeviceToDevice, stream_));
    }
    col += c;
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::DoGatherRows(const Tensor& table, const Tensor& rows, Tensor* out) {
  StreamUse use(this);
  const int64_t n = rows.dim(0), cols = table.dim(1);
  const int32_t* ids = rows.data<int32_t>();
  if (table.dtype() == out->dtype()) {
    return ByFloatType(table.dtype(), "GatherRows", [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      CUDA_RETURN_IF_ERROR(cuda::GatherRows<T>(table.data<T>(), table.dim(0), cols, ids, n,
                                               out->data<T>(), stream_));
      return absl::OkStatus();
    });
  }
  // A table of the other float dtype: gather in the table's dtype, then convert the rows.
  ASSIGN_OR_RETURN(Tensor rows_tmp, Allocate(table.dtype(), {n, cols}));
  if (table.dtype() == DType::kBF16) {
    CUDA_RETURN_IF_ERROR(cuda::GatherRows<bf16>(table.data<bf16>(), table.dim(0), cols, ids, n,
                                                rows_tmp.data<bf16>(), stream_));
    CUDA_RETURN_IF_ERROR(BF16ToF32(rows_tmp.data<bf16>(), out->data<float>(), n * cols, stream_));
  } else {
    CUDA_RETURN_IF_ERROR(cuda::GatherRows<float>(table.data<float>(), table.dim(0), cols, ids,
                                                 n, rows_tmp.data<float>(), stream_));
    CUDA_RETURN_IF_ERROR(F32ToBF16(rows_tmp.data<float>(), out->data<bf16>(), n * cols, stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows,
                                     Tensor* dst, int64_t dst_row) {
  StreamUse use(this);
  const int64_t cols = Cols(src), n = num_rows * cols;
  if (n == 0) return absl::OkStatus();
  const char* from = static_cast<const char*>(src.raw_data()) +
                     src_row * cols * static_cast<int64_t>(DTypeSize(src.dtype()));
  char* to = static_cast<char*>(dst->raw_data()) +
             dst_row * cols * static_cast<int64_t>(DTypeSize(dst->dtype()));
  if (src.dtype() == dst->dtype()) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(to, from, n * DTypeSize(src.dtype()),
                                         cudaMemcpyDeviceToDevice, stream_));
  } else if (src.dtype() == DType::kF32) {
    CUDA_RETURN_IF_ERROR(F32ToBF16(reinterpret_cast<const float*>(from),
                                   reinterpret_cast<bf16*>(to), n, stream_));
  } else {
    CUDA_RETURN_IF_ERROR(BF16ToF32(reinterpret_cast<const bf16*>(from),
                                   reinterpret_cast<float*>(to), n, stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                        Tensor* cols) {
  StreamUse use(this);
  const bool last = layout == ImageLayout::kChannelsLast;
  const int64_t b = image.dim(0), c = last ? image.dim(3) : image.dim(1);
  const int64_t h = last ? image.dim(1) : image.dim(2), w = last ? image.dim(2) : image.dim(3);
  return ByFloatType(image.dtype(), "PatchIm2Col", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::PatchIm2Col<T>(image.data<T>(), last, b, c, h, w, kernel,
                                              cols->data<T>(), stream_));
    return absl::OkStatus();
  });
}

// ---- attention

absl::Status CudaBackend::DoApplyRope(Tensor* x, const Tensor& positions, int head_dim,
                                      int rotary_dim, double base) {
  StreamUse use(this);
  RopeParams p;
  p.num_heads = static_cast<int>(x->dim(1) / head_dim);
  p.head_dim = head_dim;
  p.rotary_dim = rotary_dim;
  p.base = base;
  return ByFloatType(x->dtype(), "ApplyRope", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(cuda::ApplyRope<T>(x->data<T>(), x->dim(1), x->dim(0),
                                            positions.data<int32_t>(), p, stream_));
    return absl::OkStatus();
  });
}

absl::Status CudaBackend::RunAttention(const Tensor& q, const AttnInputs& in, int num_heads,
                                       float scale, Tensor* out) {
  const int head_dim = static_cast<int>(q.dim(1) / num_heads);
  if (in.num_seqs == 0 || in.max_num_q == 0 || q.dim(0) == 0) return absl::OkStatus();
  if (q.dim(0) > 0x7fffffff) return absl::InvalidArgumentError("CUDA attention: too many rows");

  // Tensor cores: bf16 K/V and a head dim the flash kernel instantiates; f32 q/out go through
  // bf16 scratch.
  if (in.kv_dtype == DType::kBF16 && AttentionHeadDimSupported(head_dim)) {
    const bool convert = q.dtype() == DType::kF32;
    Tensor q16 = q, out16 = *out;
    if (convert) {
      ASSIGN_OR_RETURN(q16, Allocate(DType::kBF16, q.shape()));
      CUDA_RETURN_IF_ERROR(F32ToBF16(q.data<float>(), q16.data<bf16>(), q.numel(), stream_));
      ASSIGN_OR_RETURN(out16, Allocate(DType::kBF16, out->shape()));
    }
    AttnParams p;
    p.q = q16.data<bf16>();
    p.q_stride = q.dim(1);
    p.k = static_cast<const bf16*>(in.k);
    p.v = static_cast<const bf16*>(in.v);
    p.kv_stride = in.kv_stride;
    p.block_tables = in.block_tables;
    p.block_size = in.block_size;
    p.out = out16.data<bf16>();
    p.out_stride = out->dim(1);
    p.seqs = in.seqs;
    p.num_seqs = in.num_seqs;
    p.max_num_q = in.max_num_q;
    p.max_kv_len = in.max_kv_len;
    p.total_q_rows = static_cast<int>(q.dim(0));
    p.num_heads = num_heads;
    p.num_kv_heads = in.num_kv_heads;
    p.head_dim = head_dim;
    p.causal = in.causal;
    p.scale = scale;
    p.cp_size = in.share.size;
    p.cp_rank = in.share.rank;
    p.lse = in.lse;
    p.num_splits = SuggestAttentionSplits(p, num_sms_);
    Tensor workspace;
    if (p.num_splits > 1) {
      const size_t bytes =
          AttentionWorkspaceBytes(p.num_splits, p.total_q_rows, num_heads, head_dim);
      ASSIGN_OR_RETURN(workspace, Allocate(DType::kF32, {static_cast<int64_t>(
                                                            bytes / sizeof(float))}));
      p.workspace = workspace.data<float>();
    }
    // Views whose pointers or strides the kernel cannot take fall through to the fp32 kernel.
    if (FlashAttentionSupports(p)) {
      CUDA_RETURN_IF_ERROR(FlashAttention(p, stream_));
      if (convert) {
        CUDA_RETURN_IF_ERROR(
            BF16ToF32(out16.data<bf16>(), out->data<float>(), out->numel(), stream_));
      }
      return absl::OkStatus();
    }
  }

  if (in.share.size > 1 || in.lse != nullptr) {
    return absl::UnimplementedError(absl::StrCat(
        "CUDA attention over a context share or with log-sum-exp runs on the tensor-core kernel "
        "only (bf16 KV cache, head_dim 64/80/96/112/128); got ",
        std::string(DTypeName(in.kv_dtype)), " KV, head_dim ", head_dim));
  }
  if (head_dim > kGenericAttentionMaxHeadDim) {
    return absl::UnimplementedError(absl::StrCat("CUDA attention: head_dim ", head_dim,
                                                 " > ", kGenericAttentionMaxHeadDim));
  }
  return ByFloatType(q.dtype(), "attention", [&](auto q_tag) -> absl::Status {
    using TQ = typename decltype(q_tag)::type;
    return ByFloatType(in.kv_dtype, "attention", [&](auto kv_tag) -> absl::Status {
      using TKV = typename decltype(kv_tag)::type;
      GenericAttnParams<TQ, TKV> g;
      g.q = q.data<TQ>();
      g.q_stride = q.dim(1);
      g.k = static_cast<const TKV*>(in.k);
      g.v = static_cast<const TKV*>(in.v);
      g.kv_stride = in.kv_stride;
      g.block_tables = in.block_tables;
      g.block_size = in.block_size;
      g.out = out->data<TQ>();
      g.out_stride = out->dim(1);
      g.seqs = in.seqs;
      g.num_seqs = in.num_seqs;
      g.max_num_q = in.max_num_q;
      g.num_heads = num_heads;
      g.num_kv_heads = in.num_kv_heads;
      g.head_dim = head_dim;
      g.causal = in.causal;
      g.scale = scale;
      CUDA_RETURN_IF_ERROR((GenericAttention<TQ, TKV>(g, stream_)));
      return absl::OkStatus();
    });
  });
}

absl::Status CudaBackend::DoAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                      int batch, int num_heads, int num_kv_heads, bool causal,
                                      float scale, Tensor* out) {
  StreamUse use(this);
  const int64_t len = q.dim(0) / batch;
  if (q.dim(0) > 0x7fffffff) return absl::InvalidArgumentError("CUDA attention: too many rows");
  // The sequence descriptors are written by a kernel, not uploaded: capture-safe.
  ASSIGN_OR_RETURN(Tensor seqs, Allocate(DType::kI32, {batch, 4}));
  CUDA_RETURN_IF_ERROR(MakeContiguousSequences(reinterpret_cast<AttnSequence*>(seqs.raw_data()),
                                               batch, static_cast<int>(len), stream_));
  AttnInputs in;
  in.k = k.raw_data();
  in.v = v.raw_data();
  in.kv_dtype = k.dtype();
  in.kv_stride = k.dim(1);
  in.seqs = reinterpret_cast<const AttnSequence*>(seqs.raw_data());
  in.num_seqs = batch;
  in.max_num_q = static_cast<int>(len);
  in.max_kv_len = static_cast<int>(len);
  in.num_kv_heads = num_kv_heads;
  in.causal = causal;
  return RunAttention(q, in, num_heads, scale, out);
}

absl::Status CudaBackend::DoWriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots,
                                         int layer, PagedKvCache* cache) {
  StreamUse use(this);
  Tensor& k_cache = cache->key_tensor(layer);
  Tensor& v_cache = cache->value_tensor(layer);
  const int64_t rows = k.dim(0), width = k.dim(1);
  return ByFloatType(k.dtype(), "WriteKvCache", [&](auto in_tag) -> absl::Status {
    using T = typename decltype(in_tag)::type;
    return ByFloatType(k_cache.dtype(), "WriteKvCache", [&](auto cache_tag) -> absl::Status {
      using C = typename decltype(cache_tag)::type;
      CUDA_RETURN_IF_ERROR((cuda::WriteKvCache<T, C>(k.data<T>(), v.data<T>(), width, rows,
                                                     width, slots.data<int32_t>(),
                                                     k_cache.data<C>(), v_cache.data<C>(),
                                                     stream_)));
      return absl::OkStatus();
    });
  });
}

absl::Status CudaBackend::DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                           const PagedBatch& batch, int num_heads, float scale,
                                           Tensor* out, Tensor* lse) {
  StreamUse use(this);
  const KvCacheShape& cs = cache.shape();
  if (batch.sequences.dim(0) > 65535) {
    return absl::InvalidArgumentError("CUDA PagedAttention: more than 65535 sequences");
  }
  // Straight from the device cache: PagedBatch rows are AttnSequence (kv_begin = table_begin).
  AttnInputs in;
  in.k = cache.key_tensor(layer).raw_data();
  in.v = cache.value_tensor(layer).raw_data();
  in.kv_dtype = cache.key_tensor(layer).dtype();
  in.kv_stride = static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim;
  in.block_tables = batch.block_tables.data<int32_t>();
  in.block_size = cs.block_size;
  in.seqs = reinterpret_cast<const AttnSequence*>(batch.sequences.data<int32_t>());
  in.num_seqs = static_cast<int>(batch.sequences.dim(0));
  in.max_num_q = batch.max_num_queries;
  in.max_kv_len = batch.max_kv_len;
  in.num_kv_heads = cs.num_kv_heads;
  in.causal = true;
  in.share = batch.share;
  in.lse = lse != nullptr ? lse->data<float>() : nullptr;
  return RunAttention(q, in, num_heads, scale, out);
}

// ---- sampling helpers

absl::Status CudaBackend::DoArgmax(const Tensor& x, std::vector<int32_t>* out) {
  RETURN_IF_ERROR(CheckNotInStep("Argmax"));
  StreamUse use(this);
  const int64_t rows = x.dim(0);
  out->assign(rows, 0);
  if (rows == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Tensor ids, Allocate(DType::kI32, {rows}));
  RETURN_IF_ERROR(ByFloatType(x.dtype(), "Argmax", [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    CUDA_RETURN_IF_ERROR(
        ArgmaxRows<T>(x.data<T>(), rows, x.dim(1), ids.data<int32_t>(), stream_));
    return absl::OkStatus();
  }));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out->data(), ids.raw_data(), rows * sizeof(int32_t),
                                       cudaMemcpyDeviceToHost, stream_));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

// ---- CUDA graphs

absl::Status CudaBackend::RunCaptured(int64_t key, absl::FunctionRef<absl::Status()> step) {
  if (OnStepThread()) return CheckNotInStep("RunCaptured (it is not reentrant)");
  absl::MutexLock run_lock(&run_mu_);
  if (graphs_.Has(key)) {
    return graphs_.Run(key, stream_, [](cudaStream_t) -> absl::Status {
      return absl::InternalError("a captured graph is replayed, never recorded again");
    });
  }

  auto it = captured_.find(key);
  if (it == captured_.end()) {
    // First call: eager warm-up while measuring the step's scratch.
    std::shared_ptr<ScratchArena> shadow = ScratchArena::CreateVirtual();
    BeginStep(StepMode::kMeasuring, shadow);
    const absl::Status status = step();
    const absl::Status violation = EndStep();
    if (!violation.ok()) return violation;
    RETURN_IF_ERROR(status);
    captured_[key].scratch_bytes = shadow->peak_bytes();
    return absl::OkStatus();
  }

  // Second call: capture with the scratch served from a reserved arena, then launch.
  const size_t measured = it->second.scratch_bytes;
  absl::StatusOr<std::shared_ptr<ScratchArena>> arena =
      ScratchArena::Create(measured + measured / 8 + (size_t{1} << 20));
  if (!arena.ok()) return arena.status();
  absl::Status status;
  {
    // Waits for other threads' calls in flight and holds new ones off until the capture ends.
    absl::WriterMutexLock capture_lock(&capture_mu_);
    allocator_->BeginDeferringFrees();
    BeginStep(StepMode::kCapturing, *arena);
    status = graphs_.Run(key, stream_, [&](cudaStream_t) -> absl::Status {
      const absl::Status recorded = step();
      // A violation the step swallowed still discards the graph.
      RETURN_IF_ERROR(StepViolation());
      return recorded;
    });
    const absl::Status violation = EndStep();
    allocator_->EndDeferringFrees();
    if (status.ok()) status = violation;
  }
  if (!status.ok()) {
    // Measure again on the next call (shapes or the environment may have changed).
    // A graph exists only if its first launch failed; it must not outlive its arena.
    graphs_.Erase(key);
    captured_.erase(key);
    return absl::Status(status.code(),
                        absl::StrCat("capturing step ", key, ": ", status.message()));
  }
  it = captured_.find(key);
  it->second.arena = *std::move(arena);
  return absl::OkStatus();
}

void CudaBackend::ClearCaptured() {
  if (OnStepThread()) {
    CheckNotInStep("ClearCaptured").IgnoreError();  // fails the RunCaptured call instead
    return;
  }
  absl::MutexLock run_lock(&run_mu_);
  // Replays in flight still use the graphs' arenas.
  Note(CUDA_STATUS(cudaStreamSynchronize(stream_)));
  graphs_.Clear();
  captured_.clear();
}

size_t CudaBackend::num_captured() const {
  absl::MutexLock lock(&run_mu_);
  return graphs_.size();
}

size_t CudaBackend::captured_scratch_bytes() const {
  absl::MutexLock lock(&run_mu_);
  size_t total = 0;
  for (const auto& [key, c] : captured_) {
    if (c.arena != nullptr) total += c.arena->capacity();
  }
  return total;
}

absl::StatusOr<Backend*> GetCudaBackend() {
  static absl::StatusOr<std::unique_ptr<CudaBackend>>* backend =
      new absl::StatusOr<std::unique_ptr<CudaBackend>>(CudaBackend::Create(0));
  if (!backend->ok()) return backend->status();
  return backend->value().get();
}

}  // namespace glm4v::cuda
