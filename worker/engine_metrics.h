// The engine's Prometheus series (glm4v_worker_*), registered once per registry and updated
// from the step loop.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"
#include "worker/engine_stats.h"

namespace glm4v::worker {

class EngineMetrics {
 public:
  static absl::StatusOr<std::unique_ptr<EngineMetrics>> Register(metrics::Registry* registry);

  // Gauges from a fresh snapshot.
  void SetLoad(const EngineStats& stats);
  // After each model step.
  void ObserveStep(int batch_sequences, int batch_tokens, double seconds);
  void AddPreemptions(int n) { preemptions_->Increment(n); }
  void AddPrefixCacheLookups(int64_t queried_blocks, int64_t hit_blocks);
  void AddGeneratedTokens(int n) { generated_tokens_->Increment(n); }
  void AddPromptTokens(int total, int cached);
  // outcome: "stop", "length", "cancelled", "failed".
  void CountRequest(const char* outcome);
  void ObserveRequestLatencies(double ttft_seconds, double e2e_seconds);

 private:
  EngineMetrics() = default;

  metrics::Gauge* kv_blocks_used_ = nullptr;
  metrics::Gauge* kv_blocks_total_ = nullptr;
  metrics::Gauge* kv_usage_ratio_ = nullptr;
  metrics::Gauge* prefix_cache_blocks_ = nullptr;
  metrics::Gauge* running_ = nullptr;
  metrics::Gauge* waiting_ = nullptr;
  metrics::Counter* preemptions_ = nullptr;
  metrics::Counter* prefix_queries_ = nullptr;
  metrics::Counter* prefix_hits_ = nullptr;
  metrics::Counter* generated_tokens_ = nullptr;
  metrics::Counter* prompt_tokens_ = nullptr;
  metrics::Counter* cached_prompt_tokens_ = nullptr;
  metrics::Family<metrics::Counter>* requests_ = nullptr;
  metrics::Histogram* batch_sequences_ = nullptr;
  metrics::Histogram* batch_tokens_ = nullptr;
  metrics::Histogram* step_seconds_ = nullptr;
  metrics::Histogram* ttft_seconds_ = nullptr;
  metrics::Histogram* e2e_seconds_ = nullptr;
};

}  // namespace glm4v::worker
