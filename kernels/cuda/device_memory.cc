#include "kernels/cuda/device_memory.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

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
  {
    absl::MutexLock lock(&defer_mu_);
    if (deferring_) {
      deferred_.emplace_back(ptr, bytes);
      return;
    }
  }
  FreeNow(ptr, bytes);
}

void DeviceAllocator::FreeNow(void* ptr, size_t bytes) {
  // Errors here (e.g. a context torn down at exit) cannot be reported from a deleter.
  if (cudaFreeAsync(ptr, stream_) != cudaSuccess) cudaGetLastError();
  in_use_.fetch_sub(RoundUp(bytes == 0 ? 1 : bytes), std::memory_order_relaxed);
}

void DeviceAllocator::BeginDeferringFrees() {
  absl::MutexLock lock(&defer_mu_);
  deferring_ = true;
}

void DeviceAllocator::EndDeferringFrees() {
  std::vector<std::pair<void*, size_t>> queued;
  {
    absl::MutexLock lock(&defer_mu_);
    deferring_ = false;
    queued.swap(deferred_);
  }
  for (const auto& [ptr, bytes] : queued) FreeNow(ptr, bytes);
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

size_t ScratchArena::RoundUp(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
}

ScratchArena::ScratchArena(char* base, size_t capacity) : base_(base), capacity_(capacity) {
  absl::MutexLock lock(&mu_);
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

std::shared_ptr<ScratchArena> ScratchArena::CreateVirtual() {
  // Large enough never to run out, small enough that offset + size cannot overflow.
  return std::shared_ptr<ScratchArena>(
      new ScratchArena(nullptr, std::numeric_limits<size_t>::max() / 4 / kAlignment * kAlignment));
}

absl::StatusOr<std::shared_ptr<ScratchArena>> ScratchArena::Create(size_t capacity_bytes) {
  const size_t capacity = RoundUp(capacity_bytes);
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&p, capacity));
  return std::shared_ptr<ScratchArena>(new ScratchArena(static_cast<char*>(p), capacity));
}

ScratchArena::~ScratchArena() {
  if (base_ != nullptr && cudaFree(base_) != cudaSuccess) cudaGetLastError();
}

absl::StatusOr<size_t> ScratchArena::AllocateOffset(size_t bytes) {
  const size_t need = RoundUp(bytes);
  absl::MutexLock lock(&mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const size_t offset = it->first, left = it->second - need;
    free_.erase(it);
    if (left > 0) free_.emplace(offset + need, left);
    used_.emplace(offset, need);
    peak_ = std::max(peak_, offset + need);
    return offset;
  }
  size_t free_total = 0;
  for (const auto& [offset, size] : free_) free_total += size;
  return absl::ResourceExhaustedError(absl::StrCat(
      "scratch arena full: need ", need, " bytes, ", free_total, " of ", capacity_,
      " free (fragmented or the step allocates more than when it was measured)"));
}

void ScratchArena::FreeOffset(size_t offset) {
  absl::MutexLock lock(&mu_);
  auto used = used_.find(offset);
  if (used == used_.end()) return;  // not ours: ignore rather than corrupt the free list
  size_t begin = offset, size = used->second;
  used_.erase(used);
  auto next = free_.lower_bound(begin);
  if (next != free_.end() && next->first == begin + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      begin = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(begin, size);
}

size_t ScratchArena::peak_bytes() const {
  absl::MutexLock lock(&mu_);
  return peak_;
}

absl::StatusOr<Tensor> ScratchArena::Allocate(DType dtype, Shape shape) {
  if (base_ == nullptr) return absl::FailedPreconditionError("virtual scratch arena has no memory");
  const int64_t n = NumElements(shape);
  if (n < 0) return absl::InvalidArgumentError("negative shape");
  absl::StatusOr<size_t> offset = AllocateOffset(static_cast<size_t>(n) * DTypeSize(dtype));
  if (!offset.ok()) return offset.status();
  void* p = base_ + *offset;
  std::shared_ptr<const void> owner(
      p, [arena = shared_from_this(), off = *offset](const void*) { arena->FreeOffset(off); });
  return Tensor::Borrow(dtype, std::move(shape), p, std::move(owner), Device::kCuda);
}

absl::StatusOr<std::unique_ptr<HostStagingRing>> HostStagingRing::Create(size_t bytes,
                                                                         cudaStream_t stream) {
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
  return std::unique_ptr<HostStagingRing>(
      new HostStagingRing(static_cast<char*>(p), bytes, stream));
}

HostStagingRing::~HostStagingRing() {
  absl::MutexLock lock(&mu_);
  for (const InFlight& f : in_flight_) {
    cudaEventSynchronize(f.done);
    cudaEventDestroy(f.done);
  }
  for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
  cudaFreeHost(base_);
  cudaGetLastError();
}

absl::Status HostStagingRing::Copy(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  if (bytes > size_ / 2) {
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return absl::OkStatus();
  }
  const size_t need = (bytes + 63) / 64 * 64;
  absl::MutexLock lock(&mu_);
  // Recycle the copies that have finished (in order: they share one stream).
  while (!in_flight_.empty()) {
    const cudaError_t e = cudaEventQuery(in_flight_.front().done);
    if (e == cudaErrorNotReady) {
      cudaGetLastError();  // not an error; keep it from reaching a launcher's check
      break;
    }
    CUDA_RETURN_IF_ERROR(e);
    free_events_.push_back(in_flight_.front().done);
    in_flight_.pop_front();
  }
  if (head_ + need > size_) head_ = 0;
  const size_t begin = head_, end = head_ + need;
  // Wait for the newest copy still reading [begin, end), and with it every older one.
  size_t wait = in_flight_.size();
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    if (in_flight_[i].begin < end && begin < in_flight_[i].end) wait = i;
  }
  if (wait < in_flight_.size()) {
    CUDA_RETURN_IF_ERROR(cudaEventSynchronize(in_flight_[wait].done));
    for (size_t i = 0; i <= wait; ++i) {
      free_events_.push_back(in_flight_.front().done);
      in_flight_.pop_front();
    }
  }
  std::memcpy(base_ + begin, host_src, bytes);
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(device_dst, base_ + begin, bytes, cudaMemcpyHostToDevice, stream_));
  cudaEvent_t done = nullptr;
  if (!free_events_.empty()) {
    done = free_events_.back();
    free_events_.pop_back();
  } else {
    CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  }
  const cudaError_t recorded = cudaEventRecord(done, stream_);
  if (recorded != cudaSuccess) {
    // Without its event the region cannot be tracked: wait for the copy instead.
    free_events_.push_back(done);
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return CUDA_STATUS(recorded);
  }
  in_flight_.push_back(InFlight{begin, end, done});
  head_ = end;
  return absl::OkStatus();
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
