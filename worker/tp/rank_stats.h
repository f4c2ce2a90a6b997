// What every rank of a tensor-parallel group reports about itself, so that rank 0 (the only
// rank with a metrics port) exports all of them with a rank label: every stats interval rank 0
// broadcasts kReportStats (step_message.h) and all ranks all-gather one RankStats each over the
// control channel, between steps.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/kv_cache.h"
#include "worker/comm/communicator.h"

namespace glm4v::worker::tp {

// Plain doubles: all-gathered as bytes between ranks of one build.
struct RankStats {
  double steps = 0;           // forward steps run since the rank started
  double step_seconds = 0;    // wall time inside them
  double weight_bytes = 0;    // the rank's weight shard
  double kv_cache_bytes = 0;  // its KV cache
  double resident_bytes = 0;  // process VmRSS
};

// Bytes of K and V a cache holds.
int64_t KvCacheBytes(const PagedKvCache& cache);

// Every rank calls this with its own stats after kReportStats; returns them all in rank order.
absl::StatusOr<std::vector<RankStats>> GatherRankStats(comm::Communicator& control,
                                                       RankStats mine);

}  // namespace glm4v::worker::tp
