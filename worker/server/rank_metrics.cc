#include "worker/server/rank_metrics.h"

#include <string>

#include "common/status_macros.h"

namespace glm4v::worker {

absl::StatusOr<std::unique_ptr<RankMetrics>> RankMetrics::Register(metrics::Registry* registry,
                                                                   int tp_size) {
  ASSIGN_OR_RETURN(auto* steps, registry->AddCounterFamily(
                                    "glm4v_worker_rank_steps_total",
                                    "Forward steps run by each tensor-parallel rank.", {"rank"}));
  ASSIGN_OR_RETURN(auto* seconds,
                   registry->AddCounterFamily("glm4v_worker_rank_step_seconds_total",
                                              "Wall time of each rank's forward steps.", {"rank"}));
  ASSIGN_OR_RETURN(auto* weights,
                   registry->AddGaugeFamily("glm4v_worker_rank_weight_bytes",
                                            "Weight bytes each rank holds.", {"rank"}));
  ASSIGN_OR_RETURN(auto* kv, registry->AddGaugeFamily("glm4v_worker_rank_kv_cache_bytes",
                                                      "KV cache bytes of each rank.", {"rank"}));
  ASSIGN_OR_RETURN(auto* rss,
                   registry->AddGaugeFamily("glm4v_worker_rank_resident_bytes",
                                            "Resident memory of each rank's process.", {"rank"}));
  auto out = std::make_unique<RankMetrics>();
  absl::MutexLock lock(&out->mu_);
  for (int r = 0; r < tp_size; ++r) {
    const std::vector<std::string> label = {std::to_string(r)};
    Rank rank;
    rank.steps = &steps->WithLabels(label);
    rank.step_seconds = &seconds->WithLabels(label);
    rank.weight_bytes = &weights->WithLabels(label);
    rank.kv_cache_bytes = &kv->WithLabels(label);
    rank.resident_bytes = &rss->WithLabels(label);
    out->ranks_.push_back(rank);
  }
  return out;
}

void RankMetrics::Update(const std::vector<tp::RankStats>& ranks) {
  absl::MutexLock lock(&mu_);
  for (size_t r = 0; r < ranks.size() && r < ranks_.size(); ++r) {
    Rank& m = ranks_[r];
    const tp::RankStats& s = ranks[r];
    m.steps->Increment(s.steps - m.last.steps);
    m.step_seconds->Increment(s.step_seconds - m.last.step_seconds);
    m.weight_bytes->Set(s.weight_bytes);
    m.kv_cache_bytes->Set(s.kv_cache_bytes);
    m.resident_bytes->Set(s.resident_bytes);
    m.last = s;
  }
}

}  // namespace glm4v::worker
