// Device memory behind glm4v::Tensor: a stream-ordered caching allocator and a bump arena.
//
// DeviceAllocator sits on a CUDA memory pool (cudaMallocAsync) whose release threshold is
// "never": freed blocks stay cached in the pool and are reused in stream order, so steady-state
// serving does no cudaMalloc. Tensors it returns free themselves (cudaFreeAsync on the
// allocation stream) when the last Tensor copy sharing the storage goes away.
//
// DeviceArena is a fixed buffer carved by a bump pointer and reset per step: activation scratch
// for one forward pass, with addresses that are the same on every step (what CUDA graph
// replay needs).
//
// ScratchArena is a fixed buffer handed out first-fit with reuse of freed blocks: the scratch
// memory of one captured CUDA graph (CudaBackend::RunCaptured). Replaying the same sequence of
// allocations and frees gives the same addresses, so a "virtual" arena (no memory) run beside
// an eager step measures exactly the capacity the captured step needs.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tensor.h"

namespace glm4v::cuda {

class DeviceAllocator {
 public:
  // Uses the device's default memory pool on `device`; allocations and frees are ordered on
  // `stream` (which must outlive every tensor allocated here).
  static absl::StatusOr<DeviceAllocator*> Create(int device, cudaStream_t stream);

  // Uninitialized device tensor (contiguous, 256-byte aligned). Any dtype.
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape);
  absl::StatusOr<void*> AllocateRaw(size_t bytes);
  // Thread-safe; may run from any thread (tensor deleters).
  void FreeRaw(void* ptr, size_t bytes);

  // While a stream capture of stream() is in progress, cudaFreeAsync on it would be recorded
  // into the graph (and, for memory allocated outside the graph, is not allowed): between
  // these two calls FreeRaw only queues, and EndDeferringFrees() frees the queue on the stream.
  void BeginDeferringFrees();
  void EndDeferringFrees();

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  size_t bytes_in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t peak_bytes_in_use() const { return peak_.load(std::memory_order_relaxed); }

 private:
  DeviceAllocator(int device, cudaStream_t stream) : device_(device), stream_(stream) {}

  void FreeNow(void* ptr, size_t bytes);

  int device_;
  cudaStream_t stream_;
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
  absl::Mutex defer_mu_;
  bool deferring_ ABSL_GUARDED_BY(defer_mu_) = false;
  std::vector<std::pair<void*, size_t>> deferred_ ABSL_GUARDED_BY(defer_mu_);
};

class DeviceArena {
 public:
  DeviceArena() = default;
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  absl::Status Init(size_t capacity_bytes);
  // A tensor viewing the next free bytes (256-byte aligned); RESOURCE_EXHAUSTED when full.
  // The tensor does not own its storage: it is valid until Reset() or the arena's destruction.
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape);
  absl::StatusOr<void*> AllocateRaw(size_t bytes);
  void Reset() { used_ = 0; }

  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }

 private:
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

class ScratchArena : public std::enable_shared_from_this<ScratchArena> {
 public:
  // Allocation granularity and alignment (as DeviceAllocator's).
  static constexpr size_t kAlignment = 256;
  static size_t RoundUp(size_t bytes);

  // No memory, unbounded: records offsets only, to measure peak_bytes() of a step.
  static std::shared_ptr<ScratchArena> CreateVirtual();
  // `capacity_bytes` of device memory (cudaMalloc, so not inside a stream capture).
  static absl::StatusOr<std::shared_ptr<ScratchArena>> Create(size_t capacity_bytes);
  ~ScratchArena();
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  // First fit: the lowest free offset with room for RoundUp(bytes) (at least one granule);
  // RESOURCE_EXHAUSTED when none. Thread-safe.
  absl::StatusOr<size_t> AllocateOffset(size_t bytes);
  // Returns an offset from AllocateOffset (coalescing with free neighbours). Thread-safe.
  void FreeOffset(size_t offset);
  // A device tensor at the next fitting offset of a real arena; its storage goes back to the
  // arena when the last Tensor copy dies (and keeps the arena alive until then).
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape);

  // Highest end offset ever handed out: the capacity a replay of the same sequence needs.
  size_t peak_bytes() const;
  size_t capacity() const { return capacity_; }
  bool is_virtual() const { return base_ == nullptr; }

 private:
  ScratchArena(char* base, size_t capacity);

  char* const base_;  // null: virtual
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::map<size_t, size_t> free_ ABSL_GUARDED_BY(mu_);  // offset -> size, disjoint, sorted
  std::map<size_t, size_t> used_ ABSL_GUARDED_BY(mu_);  // offset -> size
  size_t peak_ ABSL_GUARDED_BY(mu_) = 0;
};

// Host -> device copies through a ring of pinned host memory: the source is copied into the
// ring on the host first (so the caller may reuse it at once, whatever memory it is in), then
// a truly asynchronous cudaMemcpyAsync runs on the stream, with an event marking when its ring
// bytes may be reused. Copies complete in stream order, so the ring is recycled FIFO. Copies of
// more than half the ring go straight from the source and wait for the stream (load time).
// Thread-safe; all copies must go to one stream.
class HostStagingRing {
 public:
  static absl::StatusOr<std::unique_ptr<HostStagingRing>> Create(size_t bytes,
                                                                  cudaStream_t stream);
  // Waits for the copies in flight.
  ~HostStagingRing();
  HostStagingRing(const HostStagingRing&) = delete;
  HostStagingRing& operator=(const HostStagingRing&) = delete;

  absl::Status Copy(void* device_dst, const void* host_src, size_t bytes);

 private:
  struct InFlight {
    size_t begin, end;
    cudaEvent_t done;
  };
  HostStagingRing(char* base, size_t size, cudaStream_t stream)
      : base_(base), size_(size), stream_(stream) {}

  char* const base_;
  const size_t size_;
  const cudaStream_t stream_;
  absl::Mutex mu_;
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<InFlight> in_flight_ ABSL_GUARDED_BY(mu_);  // oldest first
  std::vector<cudaEvent_t> free_events_ ABSL_GUARDED_BY(mu_);
};

// Host-to-device copy of a host tensor into a new device tensor of the same dtype and shape.
absl::StatusOr<Tensor> CopyToDevice(DeviceAllocator& alloc, const Tensor& host);
// Device-to-host copy into a new host tensor (synchronizes the allocator's stream).
absl::StatusOr<Tensor> CopyToHost(const Tensor& device_tensor, cudaStream_t stream);

}  // namespace glm4v::cuda
