#include "worker/engine_metrics.h"

#include "common/status_macros.h"

namespace glm4v::worker {

absl::StatusOr<std::unique_ptr<EngineMetrics>> EngineMetrics::Register(
    metrics::Registry* registry) {
  std::unique_ptr<EngineMetrics> m(new EngineMetrics());
  ASSIGN_OR_RETURN(m->kv_blocks_used_,
                   registry->AddGauge("glm4v_worker_kv_blocks_used",
                                      "KV cache blocks referenced by live sequences."));
  ASSIGN_OR_RETURN(m->kv_blocks_total_,
                   registry->AddGauge("glm4v_worker_kv_blocks_capacity",
                                      "KV cache blocks this worker holds (used or free)."));
  ASSIGN_OR_RETURN(m->kv_usage_ratio_,
                   registry->AddGauge("glm4v_worker_kv_cache_usage_ratio",
                                      "Fraction of KV cache blocks in use (0..1)."));
  ASSIGN_OR_RETURN(m->prefix_cache_blocks_,
                   registry->AddGauge("glm4v_worker_prefix_cache_blocks",
                                      "Idle KV blocks kept only for prefix reuse."));
  ASSIGN_OR_RETURN(m->running_, registry->AddGauge("glm4v_worker_running_sequences",
                                                   "Sequences in the running batch."));
  ASSIGN_OR_RETURN(m->waiting_, registry->AddGauge("glm4v_worker_waiting_sequences",
                                                   "Sequences waiting for admission."));
  ASSIGN_OR_RETURN(m->preemptions_,
                   registry->AddCounter("glm4v_worker_preemptions_total",
                                        "Sequences preempted (KV freed, recomputed later)."));
  ASSIGN_OR_RETURN(m->prefix_queries_,
                   registry->AddCounter("glm4v_worker_prefix_cache_queries_total",
                                        "Full KV blocks looked up in the prefix cache."));
  ASSIGN_OR_RETURN(m->prefix_hits_,
                   registry->AddCounter("glm4v_worker_prefix_cache_hits_total",
                                        "Full KV blocks reused from the prefix cache."));
  ASSIGN_OR_RETURN(m->generated_tokens_,
                   registry->AddCounter("glm4v_worker_generated_tokens_total",
                                        "Tokens sampled."));
  ASSIGN_OR_RETURN(m->prompt_tokens_,
                   registry->AddCounter("glm4v_worker_prompt_tokens_total",
                                        "Spliced prompt rows admitted."));
  ASSIGN_OR_RETURN(m->cached_prompt_tokens_,
                   registry->AddCounter("glm4v_worker_prefix_cache_hit_tokens_total",
                                        "Prompt rows served from the prefix cache."));
  ASSIGN_OR_RETURN(m->requests_,
                   registry->AddCounterFamily("glm4v_worker_requests_total",
                                              "Finished requests by outcome.", {"outcome"}));
  ASSIGN_OR_RETURN(m->batch_sequences_,
                   registry->AddHistogram("glm4v_worker_batch_size",
                                          "Sequences per model step.",
                                          metrics::ExponentialBuckets(1, 2, 10)));
  ASSIGN_OR_RETURN(m->batch_tokens_,
                   registry->AddHistogram("glm4v_worker_batch_tokens", "Rows per model step.",
                                          metrics::ExponentialBuckets(1, 2, 14)));
  ASSIGN_OR_RETURN(m->step_seconds_,
                   registry->AddHistogram("glm4v_worker_step_seconds",
                                          "Model step latency (schedule to sampled tokens).",
                                          metrics::DefaultLatencyBuckets()));
  ASSIGN_OR_RETURN(m->ttft_seconds_,
                   registry->AddHistogram("glm4v_worker_time_to_first_token_seconds",
                                          "Arrival to first token.",
                                          metrics::DefaultLatencyBuckets()));
  ASSIGN_OR_RETURN(m->e2e_seconds_,
                   registry->AddHistogram("glm4v_worker_request_seconds",
                                          "Arrival to last token.",
                                          metrics::DefaultLatencyBuckets()));
  return m;
}

void EngineMetrics::SetLoad(const EngineStats& stats) {
  kv_blocks_used_->Set(stats.kv_blocks_used);
  kv_blocks_total_->Set(stats.kv_blocks_total);
  kv_usage_ratio_->Set(stats.kv_blocks_total > 0 ? static_cast<double>(stats.kv_blocks_used) /
                                                        static_cast<double>(stats.kv_blocks_total)
                                                  : 0.0);
  prefix_cache_blocks_->Set(stats.prefix_cache_blocks);
  running_->Set(stats.running);
  waiting_->Set(stats.waiting);
}

void EngineMetrics::ObserveStep(int batch_sequences, int batch_tokens, double seconds) {
  batch_sequences_->Observe(batch_sequences);
  batch_tokens_->Observe(batch_tokens);
  step_seconds_->Observe(seconds);
}

void EngineMetrics::AddPrefixCacheLookups(int64_t queried_blocks, int64_t hit_blocks) {
  prefix_queries_->Increment(static_cast<double>(queried_blocks));
  prefix_hits_->Increment(static_cast<double>(hit_blocks));
}

void EngineMetrics::AddPromptTokens(int total, int cached) {
  prompt_tokens_->Increment(total);
  cached_prompt_tokens_->Increment(cached);
}

void EngineMetrics::CountRequest(const char* outcome) {
  requests_->WithLabels({outcome}).Increment();
}

void EngineMetrics::ObserveRequestLatencies(double ttft_seconds, double e2e_seconds) {
  ttft_seconds_->Observe(ttft_seconds);
  e2e_seconds_->Observe(e2e_seconds);
}

}  // namespace glm4v::worker
