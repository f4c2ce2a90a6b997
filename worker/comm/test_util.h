// Test helpers: run a group of SocketCommunicator ranks as threads on loopback.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "worker/comm/socket_communicator.h"

namespace glm4v::comm::testing {

// Binds rank 0's rendezvous on a free loopback port and returns options for `world_size` ranks
// pointing at it (the caller sets .rank). Tests use short timeouts so failures stay fast.
struct LoopbackGroup {
  SocketCommunicatorOptions options;
  SocketListener listener;
};
absl::StatusOr<LoopbackGroup> BindLoopbackGroup(int world_size);

// Starts every rank of `group` in its own thread; each creates its communicator and runs
// `body`. Returns, per rank, the creation error or body's status.
std::vector<absl::Status> RunThreadedRanks(
    LoopbackGroup group, const std::function<absl::Status(SocketCommunicator&)>& body);

}  // namespace glm4v::comm::testing
