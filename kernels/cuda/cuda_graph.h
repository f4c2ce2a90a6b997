// CUDA graph capture and replay for decode steps, one graph per key (a batch-size bucket, or
// CudaBackend::RunCaptured's key).
//
// The first Run() for a key records `record` on the stream into a graph and instantiates it;
// later calls replay it. Everything `record` enqueues must read and write fixed device
// addresses (weights, the KV cache, a DeviceArena reset per step, fixed metadata buffers that
// the host updates with cudaMemcpyAsync BEFORE Run) since a replay reuses the captured pointers
// and kernel arguments. Host-side work inside `record` (argument packing, GEMM plan lookups)
// happens only at capture time.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace glm4v::cuda {

class CudaGraphCache {
 public:
  CudaGraphCache() = default;
  ~CudaGraphCache();
  CudaGraphCache(const CudaGraphCache&) = delete;
  CudaGraphCache& operator=(const CudaGraphCache&) = delete;

  // Replays key's graph on `stream`, capturing it first if needed (a failed capture or a
  // `record` error leaves no graph behind). Not thread-safe.
  absl::Status Run(int64_t key, cudaStream_t stream,
                   absl::FunctionRef<absl::Status(cudaStream_t)> record);
  bool Has(int64_t key) const { return graphs_.contains(key); }
  size_t size() const { return graphs_.size(); }
  // Drops key's graph (if any).
  void Erase(int64_t key);
  // Drops every graph (e.g. after buffers were reallocated).
  void Clear();

 private:
  absl::flat_hash_map<int64_t, cudaGraphExec_t> graphs_;
};

}  // namespace glm4v::cuda
