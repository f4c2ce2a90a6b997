// Engine configuration: KV cache budget, batching limits, admission limits.
#pragma once

#include <cstdint>

namespace glm4v::metrics {
class Registry;
}

namespace glm4v::worker {

struct EngineConfig {
  // --- KV cache: the first that is set wins ---
  int num_kv_blocks = 0;            // exact block count (tests, benchmarks)
  int64_t kv_cache_bytes = 0;       // byte budget for K+V of all layers
  double kv_cache_memory_fraction = 0;  // of ModelRunner::kv_memory_capacity_bytes()
  int block_size = 16;              // tokens per KV block

  // --- Batching ---
  int max_num_seqs = 64;              // running sequences per step
  int max_num_batched_tokens = 2048;  // rows per step (decodes + prefill chunks)
  bool enable_prefix_caching = true;
  // Schedule step N+1 and stream step N-1's tokens while step N runs (worker/step_executor.h).
  // The tokens are the same either way; off = each step completes before the next is planned.
  bool overlap_steps = true;

  // --- Admission ---
  int max_model_len = 0;           // spliced prompt + output rows; 0 = config seq_length
  int max_images_per_request = 1;
  int max_top_logprobs = 20;
  int max_pending_requests = 0;    // waiting + running; beyond it RESOURCE_EXHAUSTED; 0 = no cap

  // Where the engine registers its metrics (glm4v_worker_*); null = none.
  metrics::Registry* metrics_registry = nullptr;
};

}  // namespace glm4v::worker
