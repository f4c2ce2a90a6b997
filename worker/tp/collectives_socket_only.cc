// Built with --define=cuda=0: no NCCL, the socket communicator does every collective.
#include "absl/strings/str_cat.h"
#include "worker/tp/collectives.h"

namespace glm4v::worker::tp {

absl::StatusOr<CollectivesFactory> ResolveCollectives(absl::string_view mode, Backend* backend,
                                                      int tp_size, absl::Duration timeout) {
  if (!IsCollectivesMode(mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor-parallel collectives \"", mode, "\": expected auto, socket or nccl"));
  }
  if (mode == "nccl") {
    return absl::FailedPreconditionError(
        "NCCL collectives: this binary was built without CUDA (--define=cuda=0)");
  }
  return CollectivesFactory();
}

}  // namespace glm4v::worker::tp
