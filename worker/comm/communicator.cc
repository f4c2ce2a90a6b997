#include "worker/comm/communicator.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace glm4v::comm {

absl::Status BroadcastString(Communicator& comm, std::string* message, int root) {
  if (comm.memory_space() != MemorySpace::kHost) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "BroadcastString needs a host-memory communicator, %s uses device memory",
        comm.backend_name()));
  }
  // Length first (fixed 8 bytes) so receivers can size their buffer, then the payload.
  uint64_t size = comm.rank() == root ? message->size() : 0;
  RETURN_IF_ERROR(comm.Broadcast(&size, sizeof(size), root));
  if (comm.rank() != root) message->resize(size);
  if (size == 0) return absl::OkStatus();
  return comm.Broadcast(message->data(), size, root);
}

}  // namespace glm4v::comm
