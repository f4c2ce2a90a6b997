// Communicator: the collectives a tensor-parallel decoder needs between its rank processes.
//
// Backends: SocketCommunicator (host memory, TCP; any number of processes/threads on one or
// several machines) and NcclCommunicator (device memory, NCCL on a CUDA stream).
//
// Contract shared by every backend:
//  - Every rank calls the same collectives in the same order with the same sizes (and root).
//  - AllReduceSum gives every rank bit-identical results, so greedy decoding agrees across ranks.
//  - No call hangs forever: a peer that dies or stops participating makes the call fail within
//    the backend's timeout with UNAVAILABLE or DEADLINE_EXCEEDED naming the peer rank. After
//    any error the communicator is broken and every later call returns that error; peers
//    observe the breakage promptly (connections are torn down), so the whole group fails fast.
//  - Calls on one communicator are serialized; a communicator is not meant to be shared by
//    concurrent callers issuing different collectives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace glm4v::comm {

// Where the buffers passed to a communicator must live.
enum class MemorySpace { kHost, kDevice };

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual MemorySpace memory_space() const = 0;
  virtual absl::string_view backend_name() const = 0;

  // In-place element-wise sum of `count` floats across all ranks.
  virtual absl::Status AllReduceSum(float* data, size_t count) = 0;
  // Same for bf16 values (raw uint16 bit patterns); backends accumulate in f32 and round once.
  virtual absl::Status AllReduceSumBF16(uint16_t* data, size_t count) = 0;

  // Concatenates each rank's `bytes_per_rank` bytes from `input` in rank order into `output`
  // (world_size() * bytes_per_rank bytes). `input` may alias output + rank() * bytes_per_rank.
  virtual absl::Status AllGather(const void* input, void* output, size_t bytes_per_rank) = 0;

  // Copies `bytes` bytes at `data` on rank `root` into `data` on every other rank.
  virtual absl::Status Broadcast(void* data, size_t bytes, int root) = 0;

  // Returns once every rank has entered Barrier().
  virtual absl::Status Barrier() = 0;
};

// Broadcasts a variable-length message (e.g. rank 0's per-step batch description): the root's
// `*message` replaces `*message` on every other rank. Host-memory communicators only.
absl::Status BroadcastString(Communicator& comm, std::string* message, int root);

}  // namespace glm4v::comm
