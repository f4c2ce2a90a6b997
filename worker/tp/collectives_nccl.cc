#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/cuda_backend.h"
#include "worker/comm/nccl_communicator.h"
#include "worker/tp/collectives.h"

namespace glm4v::worker::tp {

absl::StatusOr<CollectivesFactory> ResolveCollectives(absl::string_view mode, Backend* backend,
                                                      int tp_size, absl::Duration timeout) {
  if (!IsCollectivesMode(mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor-parallel collectives \"", mode, "\": expected auto, socket or nccl"));
  }
  if (mode == "socket") return CollectivesFactory();
  // Only the CUDA backend names itself "cuda"; its activations are device tensors.
  cuda::CudaBackend* cuda_backend =
      backend != nullptr && backend->name() == "cuda" ? static_cast<cuda::CudaBackend*>(backend)
                                                      : nullptr;
  if (cuda_backend == nullptr) {
    if (mode == "auto") return CollectivesFactory();
    return absl::FailedPreconditionError(absl::StrCat(
        "NCCL collectives need the cuda backend (backend is ",
        backend == nullptr ? "none" : std::string(backend->name()), ")"));
  }
  if (mode == "auto" && tp_size == 1) return CollectivesFactory();  // nothing to communicate
  const int device = cuda_backend->device_ordinal();
  const cudaStream_t stream = cuda_backend->stream();
  return CollectivesFactory(
      [device, stream, timeout](
          comm::Communicator& control) -> absl::StatusOr<std::unique_ptr<comm::Communicator>> {
        comm::NcclCommunicatorOptions options;
        options.device = device;
        options.timeout = timeout;
        ASSIGN_OR_RETURN(std::unique_ptr<comm::NcclCommunicator> nccl,
                         comm::NcclCommunicator::Create(control, options));
        // The backend's stream: the all-reduce runs after the kernels that wrote its input and
        // before the ones that read the result (the two streams are both non-blocking).
        nccl->set_stream(stream);
        return std::unique_ptr<comm::Communicator>(std::move(nccl));
      });
}

}  // namespace glm4v::worker::tp
