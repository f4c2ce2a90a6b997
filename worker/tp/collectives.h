// Which communicator carries the decoder's collectives in a tensor-parallel group.
//
//   "socket": the group's host socket communicator (the control channel) does them; device
//             activations are staged through host memory.
//   "nccl":   an NcclCommunicator on the CUDA backend's device and stream, bootstrapped over the
//             control channel (device buffers, no host staging). Needs the "cuda" backend.
//   "auto":   "nccl" when the backend is "cuda" (which exists only with a device present) and the
//             group has more than one rank, else "socket".
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"

namespace glm4v::worker::tp {

// Builds the decoder's collectives communicator over the control channel (e.g. NCCL:
// [device](comm::Communicator& c) { return comm::NcclCommunicator::Create(c, {device}); }).
using CollectivesFactory = std::function<absl::StatusOr<std::unique_ptr<comm::Communicator>>(
    comm::Communicator& control)>;

// Resolves `mode` ("auto", "socket" or "nccl") for a group of `tp_size` ranks on `backend`.
// Returns an empty factory for the socket collectives. INVALID_ARGUMENT for an unknown mode,
// FAILED_PRECONDITION for "nccl" without the CUDA backend (or in a build without CUDA).
// The NCCL factory enqueues on the backend's stream, so collectives are ordered with the
// kernels that produce and consume the activations; `timeout` bounds init and each wait.
absl::StatusOr<CollectivesFactory> ResolveCollectives(absl::string_view mode, Backend* backend,
                                                      int tp_size, absl::Duration timeout);

// True for the names ResolveCollectives accepts.
inline bool IsCollectivesMode(absl::string_view mode) {
  return mode == "auto" || mode == "socket" || mode == "nccl";
}

}  // namespace glm4v::worker::tp
