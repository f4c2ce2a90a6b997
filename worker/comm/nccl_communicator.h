// NcclCommunicator: the device-memory Communicator over NCCL, one rank per GPU (NCCL refuses two
// ranks on one GPU). Buffers are device pointers; collectives are enqueued on stream().
//
// Bootstrap: rank 0 creates the ncclUniqueId and sends it to the others over a host
// communicator (the socket control channel), then all ranks run ncclCommInitRankConfig.
//
// Failure handling: the communicator runs in NCCL's non-blocking mode, and every wait polls
// ncclCommGetAsyncError next to the stream, so a remote failure or a hang past `timeout`
// aborts the communicator (ncclCommAbort) and returns UNAVAILABLE / DEADLINE_EXCEEDED instead
// of blocking forever. NCCL does not say which peer failed; messages name this rank and point
// at the other ranks.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"

namespace glm4v::comm {

struct NcclCommunicatorOptions {
  int device = 0;  // CUDA device of this rank
  // Limit for initialization and for any one wait on a collective.
  absl::Duration timeout = absl::Seconds(60);
  // true: each collective returns after it has completed (results readable, errors seen).
  // false: collectives return once enqueued on stream(); call Synchronize() to wait and check.
  bool synchronous = true;
};

class NcclCommunicator : public Communicator {
 public:
  // Collective over `bootstrap` (host memory, same ranks and world size).
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(
      Communicator& bootstrap, const NcclCommunicatorOptions& options);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  MemorySpace memory_space() const override { return MemorySpace::kDevice; }
  absl::string_view backend_name() const override { return "nccl"; }

  absl::Status AllReduceSum(float* data, size_t count) override;
  absl::Status AllReduceSumBF16(uint16_t* data, size_t count) override;
  absl::Status AllGather(const void* input, void* output, size_t bytes_per_rank) override;
  absl::Status Broadcast(void* data, size_t bytes, int root) override;
  absl::Status Barrier() override;

  // Stream the collectives are enqueued on (by default one this communicator created).
  cudaStream_t stream() const { return stream_; }
  void set_stream(cudaStream_t stream);

  // Waits until everything enqueued on stream() has finished, watching for NCCL errors and the
  // timeout (either aborts the communicator).
  absl::Status Synchronize();

 private:
  NcclCommunicator(int rank, int world_size, const NcclCommunicatorOptions& options)
      : rank_(rank), world_size_(world_size), options_(options) {}

  // Waits for a non-blocking NCCL call on the communicator to leave ncclInProgress.
  absl::Status WaitForComm(const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks the result of an enqueue call, then synchronizes if the options say so.
  absl::Status Finish(ncclResult_t result, const char* what, bool force_sync)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SynchronizeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Fail(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckUsable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status NcclError(ncclResult_t result, const char* what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int rank_;
  const int world_size_;
  const NcclCommunicatorOptions options_;

  mutable absl::Mutex mu_;
  ncclComm_t comm_ ABSL_GUARDED_BY(mu_) = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaStream_t own_stream_ = nullptr;
  float* barrier_scratch_ = nullptr;  // one float of device memory for Barrier()
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v::comm
