#include "worker/comm/nccl_communicator.h"

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace glm4v::comm {
namespace {

absl::Status CudaError(cudaError_t err, const char* what) {
  return absl::InternalError(
      absl::StrFormat("%s: CUDA error %s: %s", what, cudaGetErrorName(err),
                      cudaGetErrorString(err)));
}

absl::StatusCode CodeFor(ncclResult_t result) {
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::StatusCode::kInvalidArgument;
    case ncclSystemError:   // socket/peer trouble
    case ncclRemoteError:   // a peer reported a failure
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Polling interval: short enough for decode-step latency, long enough not to hog a core.
void PollPause(int iteration) {
  if (iteration < 1000) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    Communicator& bootstrap, const NcclCommunicatorOptions& options) {
  if (bootstrap.memory_space() != MemorySpace::kHost) {
    return absl::FailedPreconditionError(
        "NCCL bootstrap needs a host-memory communicator to share the ncclUniqueId");
  }
  const int rank = bootstrap.rank(), world = bootstrap.world_size();
  int devices = 0;
  cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess) return CudaError(err, "cudaGetDeviceCount");
  if (options.device < 0 || options.device >= devices) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank %d: CUDA device %d does not exist (%d visible)", rank, options.device, devices));
  }
  err = cudaSetDevice(options.device);
  if (err != cudaSuccess) return CudaError(err, "cudaSetDevice");

  ncclUniqueId id{};
  if (rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) {
      return absl::InternalError(absl::StrCat("ncclGetUniqueId: ", ncclGetErrorString(r)));
    }
  }
  // If rank 0 failed above, the others fail in this Broadcast with the host backend's
  // timeout (or sooner, once rank 0's process drops the control channel), naming rank 0.
  RETURN_IF_ERROR(bootstrap.Broadcast(&id, sizeof(id), 0));

  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator(rank, world, options));
  err = cudaStreamCreateWithFlags(&comm->own_stream_, cudaStreamNonBlocking);
  if (err != cudaSuccess) return CudaError(err, "cudaStreamCreate");
  comm->stream_ = comm->own_stream_;
  err = cudaMalloc(&comm->barrier_scratch_, sizeof(float));
  if (err != cudaSuccess) return CudaError(err, "cudaMalloc");

  absl::MutexLock lock(&comm->mu_);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // so that init and collectives can be abandoned on timeout
  ncclResult_t r = ncclCommInitRankConfig(&comm->comm_, world, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    return comm->Fail(comm->NcclError(r, "ncclCommInitRankConfig"));
  }
  RETURN_IF_ERROR(comm->WaitForComm("ncclCommInitRankConfig"));
  return comm;
}

NcclCommunicator::~NcclCommunicator() {
  {
    absl::MutexLock lock(&mu_);
    if (comm_ != nullptr) {
      // Finalize flushes outstanding work; a broken or hung group is aborted instead.
      bool clean = false;
      if (broken_.ok()) {
        ncclResult_t r = ncclCommFinalize(comm_);
        clean = (r == ncclSuccess || r == ncclInProgress) && WaitForComm("ncclCommFinalize").ok();
      }
      if (comm_ != nullptr) {  // WaitForComm() aborts and clears it on failure
        if (clean) {
          ncclCommDestroy(comm_);
        } else {
          ncclCommAbort(comm_);
        }
        comm_ = nullptr;
      }
    }
  }
  if (barrier_scratch_ != nullptr) cudaFree(barrier_scratch_);
  if (own_stream_ != nullptr) cudaStreamDestroy(own_stream_);
}

void NcclCommunicator::set_stream(cudaStream_t stream) {
  absl::MutexLock lock(&mu_);
  stream_ = stream;
}

absl::Status NcclCommunicator::NcclError(ncclResult_t result, const char* what) const {
  const char* detail = ncclGetLastError(comm_);
  std::string message = absl::StrFormat("rank %d of %d: %s failed: %s", rank_, world_size_, what,
                                        ncclGetErrorString(result));
  if (detail != nullptr && *detail != '\0') absl::StrAppend(&message, " (", detail, ")");
  const absl::StatusCode code = CodeFor(result);
  if (code == absl::StatusCode::kUnavailable) {
    absl::StrAppend(&message, "; a peer rank failed or is unreachable, see the other ranks' logs");
  }
  return absl::Status(code, message);
}

absl::Status NcclCommunicator::Fail(absl::Status status) {
  if (broken_.ok()) broken_ = status;
  if (comm_ != nullptr) {
    ncclCommAbort(comm_);  // releases peers blocked on us and frees the communicator
    comm_ = nullptr;
  }
  return status;
}

absl::Status NcclCommunicator::CheckUsable() const {
  if (broken_.ok()) return absl::OkStatus();
  return absl::Status(broken_.code(), absl::StrCat("communicator is broken by an earlier error: ",
                                                   broken_.message()));
}

absl::Status NcclCommunicator::WaitForComm(const char* what) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  for (int i = 0;; ++i) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) return Fail(NcclError(r, "ncclCommGetAsyncError"));
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return Fail(NcclError(state, what));
    if (absl::Now() > deadline) {
      return Fail(absl::DeadlineExceededError(absl::StrFormat(
          "rank %d of %d: %s still in progress after %s; a peer rank may have died or hung",
          rank_, world_size_, what, absl::FormatDuration(options_.timeout))));
    }
    PollPause(i);
  }
}

absl::Status NcclCommunicator::SynchronizeLocked() {
  const absl::Time deadline = absl::Now() + options_.timeout;
  for (int i = 0;; ++i) {
    cudaError_t err = cudaStreamQuery(stream_);
    // Check NCCL's view first: a remote failure must win over a (never finishing) stream.
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) return Fail(NcclError(r, "ncclCommGetAsyncError"));
    if (state != ncclSuccess && state != ncclInProgress) {
      return Fail(NcclError(state, "collective"));
    }
    if (err == cudaSuccess) return absl::OkStatus();
    if (err != cudaErrorNotReady) return Fail(CudaError(err, "cudaStreamQuery"));
    if (absl::Now() > deadline) {
      return Fail(absl::DeadlineExceededError(absl::StrFormat(
          "rank %d of %d: collective did not complete within %s; a peer rank may have died, "
          "hung or skipped the call",
          rank_, world_size_, absl::FormatDuration(options_.timeout))));
    }
    PollPause(i);
  }
}

absl::Status NcclCommunicator::Synchronize() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  return SynchronizeLocked();
}

absl::Status NcclCommunicator::Finish(ncclResult_t result, const char* what, bool force_sync) {
  if (result != ncclSuccess && result != ncclInProgress) return Fail(NcclError(result, what));
  RETURN_IF_ERROR(WaitForComm(what));
  if (options_.synchronous || force_sync) return SynchronizeLocked();
  return absl::OkStatus();
}

absl::Status NcclCommunicator::AllReduceSum(float* data, size_t count) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (count == 0) return absl::OkStatus();
  return Finish(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, comm_, stream_),
                "ncclAllReduce(f32)", false);
}

absl::Status NcclCommunicator::AllReduceSumBF16(uint16_t* data, size_t count) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (count == 0) return absl::OkStatus();
  return Finish(ncclAllReduce(data, data, count, ncclBfloat16, ncclSum, comm_, stream_),
                "ncclAllReduce(bf16)", false);
}

absl::Status NcclCommunicator::AllGather(const void* input, void* output,
                                         size_t bytes_per_rank) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (bytes_per_rank == 0) return absl::OkStatus();
  return Finish(ncclAllGather(input, output, bytes_per_rank, ncclUint8, comm_, stream_),
                "ncclAllGather", false);
}

absl::Status NcclCommunicator::Broadcast(void* data, size_t bytes, int root) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (root < 0 || root >= world_size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("broadcast root %d out of range for world_size %d", root, world_size_));
  }
  if (bytes == 0) return absl::OkStatus();
  return Finish(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_),
                "ncclBroadcast", false);
}

absl::Status NcclCommunicator::Barrier() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  // A one-element all-reduce that we wait for: nobody finishes before everyone has joined.
  return Finish(ncclAllReduce(barrier_scratch_, barrier_scratch_, 1, ncclFloat32, ncclSum, comm_,
                              stream_),
                "Barrier", /*force_sync=*/true);
}

}  // namespace glm4v::comm
