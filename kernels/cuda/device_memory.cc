#include "kernels/cuda/device_memory.h"

#include <cstdint>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_check.h"

namespace glm4v::cuda {
namespace {

constexpr size_t kAlign = 256;
size_t RoundUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

absl::StatusOr<DeviceAllocator*> DeviceAllocator::Create(int device, cudaStream_t stream) {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaMemPool_t pool;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetDefaultMemPool(&pool, device));
  // Keep freed memory cached in the pool instead of returning it to the driver at every sync.
  uint64_t threshold = std::numeric_limits<uint64_t>::max();
  CUDA_RETURN_IF_ERROR(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  return new DeviceAllocator(device, stream);
}

absl::StatusOr<void*> DeviceAllocator::AllocateRaw(size_t bytes) {
  void* ptr = nullptr;
  const size_t rounded = RoundUp(bytes == 0 ? 1 : bytes);
  CUDA_RETURN_IF_ERROR(cudaMallocAsync(&ptr, rounded, stream_));
  const size_t now = in_use_.fetch_add(rounded, std::memory_order_relaxed) + rounded;
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return ptr;
}

void DeviceAllocator::FreeRaw(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  // Errors here (e.g. a context torn down at exit) cannot be reported from a deleter.
  if (cudaFreeAsync(ptr, stream_) != cudaSuccess) cudaGetLastError();
  in_use_.fetch_sub(RoundUp(bytes == 0 ? 1 : bytes), std::memory_order_relaxed);
}

absl::StatusOr<Tensor> DeviceAllocator::Allocate(DType dtype, Shape shape) {
  const int64_t n = NumElements(shape);
  if (n < 0) return absl::InvalidArgumentError("negative shape");
  const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
  absl::StatusOr<void*> ptr = AllocateRaw(bytes);
  if (!ptr.ok()) return ptr.status();
  void* p = *ptr;
  std::shared_ptr<const void> owner(p, [this, bytes](const void* q) {
    FreeRaw(const_cast<void*>(q), bytes);
  });
  return Tensor::Borrow(dtype, std::move(shape), p, std::move(owner), Device::kCuda);
}

DeviceArena::~DeviceArena() {
  if (base_ != nullptr) cudaFree(base_);
}

absl::Status DeviceArena::Init(size_t capacity_bytes) {
  if (base_ != nullptr) return absl::FailedPreconditionError("arena already initialized");
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&p, capacity_bytes));
  base_ = static_cast<char*>(p);
  capacity_ = capacity_bytes;
  used_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<void*> DeviceArena::AllocateRaw(size_t bytes) {
  const size_t rounded = RoundUp(bytes == 0 ? 1 : bytes);
  if (base_ == nullptr) return absl::FailedPreconditionError("arena not initialized");
  if (used_ + rounded > capacity_) {
    return absl::ResourceExhaustedError(absl::StrCat("arena full: need ", rounded, " bytes, ",
                                                     capacity_ - used_, " of ", capacity_,
                                                     " left"));
  }
  void* p = base_ + used_;
  used_ += rounded;
  return p;
}

absl::StatusOr<Tensor> DeviceArena::Allocate(DType dtype, Shape shape) {
  const int64_t n = NumElements(shape);
  if (n < 0) return absl::InvalidArgumentError("negative shape");
  absl::StatusOr<void*> p = AllocateRaw(static_cast<size_t>(n) * DTypeSize(dtype));
  if (!p.ok()) return p.status();
  return Tensor::Borrow(dtype, std::move(shape), *p, nullptr, Device::kCuda);
}

absl::StatusOr<Tensor> CopyToDevice(DeviceAllocator& alloc, const Tensor& host) {
  if (host.device() != Device::kCpu) return absl::InvalidArgumentError("source not on host");
  const Tensor src = host.is_contiguous() ? host : host.Clone();
  absl::StatusOr<Tensor> dst = alloc.Allocate(src.dtype(), src.shape());
  if (!dst.ok()) return dst.status();
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst->raw_data(), src.raw_data(), src.nbytes(),
                                       cudaMemcpyHostToDevice, alloc.stream()));
  // Pageable source memory: the copy is staged before returning, but the caller may free
  // `host` right after, so wait for it.
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(alloc.stream()));
  return dst;
}

absl::StatusOr<Tensor> CopyToHost(const Tensor& device_tensor, cudaStream_t stream) {
  if (device_tensor.device() != Device::kCuda) {
    return absl::InvalidArgumentError("source not on the device");
  }
  if (!device_tensor.is_contiguous()) return absl::InvalidArgumentError("not contiguous");
  Tensor host = Tensor::Empty(device_tensor.dtype(), device_tensor.shape());
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host.raw_data(), device_tensor.raw_data(), host.nbytes(),
                                       cudaMemcpyDeviceToHost, stream));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace glm4v::cuda
