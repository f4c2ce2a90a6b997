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
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
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
  void FreeRaw(void* ptr, size_t bytes);

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  size_t bytes_in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t peak_bytes_in_use() const { return peak_.load(std::memory_order_relaxed); }

 private:
  DeviceAllocator(int device, cudaStream_t stream) : device_(device), stream_(stream) {}

  int device_;
  cudaStream_t stream_;
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
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

// Host-to-device copy of a host tensor into a new device tensor of the same dtype and shape.
absl::StatusOr<Tensor> CopyToDevice(DeviceAllocator& alloc, const Tensor& host);
// Device-to-host copy into a new host tensor (synchronizes the allocator's stream).
absl::StatusOr<Tensor> CopyToHost(const Tensor& device_tensor, cudaStream_t stream);

}  // namespace glm4v::cuda
