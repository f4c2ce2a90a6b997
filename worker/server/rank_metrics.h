// The per-rank series of a tensor-parallel group, exported by rank 0 (followers have no metrics
// port): glm4v_worker_rank_steps_total, _step_seconds_total, _weight_bytes, _kv_cache_bytes and
// _resident_bytes, each with a `rank` label, from the RankStats every rank reports
// (worker/tp/rank_stats.h).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/registry.h"
#include "worker/tp/rank_stats.h"

namespace glm4v::worker {

class RankMetrics {
 public:
  static absl::StatusOr<std::unique_ptr<RankMetrics>> Register(metrics::Registry* registry,
                                                               int tp_size);
  // A report of every rank (rank order); counters advance by what each rank did since the last.
  void Update(const std::vector<tp::RankStats>& ranks);

 private:
  struct Rank {
    metrics::Counter* steps = nullptr;
    metrics::Counter* step_seconds = nullptr;
    metrics::Gauge* weight_bytes = nullptr;
    metrics::Gauge* kv_cache_bytes = nullptr;
    metrics::Gauge* resident_bytes = nullptr;
    tp::RankStats last;
  };
  absl::Mutex mu_;
  std::vector<Rank> ranks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v::worker
