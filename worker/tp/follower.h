// The loop of a tensor-parallel rank > 0: wait for rank 0's next message, run the same step
// on this rank's decoder shard and KV cache shard, repeat.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "model/decoder.h"
#include "worker/comm/communicator.h"

namespace glm4v::worker::tp {

// Returns OK when rank 0 sends "stop"; otherwise the first failure: the communicator's
// UNAVAILABLE / DEADLINE_EXCEEDED when another rank dies or stalls (rank 0 sends heartbeats
// while idle, so silence past the timeout means it is gone), or the error of a step.
// kv_dtype: this rank's KV cache dtype (unset: the backend's activation dtype), the same as
// rank 0's.
absl::Status RunFollower(const Decoder& decoder, comm::Communicator& control,
                         std::optional<DType> kv_dtype = std::nullopt);

}  // namespace glm4v::worker::tp
