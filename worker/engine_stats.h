// A snapshot of the engine's load and cache figures (WorkerStats in the internal proto).
#pragma once

#include <cstdint>

namespace glm4v::worker {

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;       // referenced by at least one sequence
  int kv_block_size = 0;
  int64_t prefix_cache_blocks = 0;  // idle blocks kept only for prefix reuse
  int max_model_len = 0;
  bool healthy = true;              // false after a model failure that hit every request
  bool accepting = true;            // false once Shutdown started

  int64_t completed_requests = 0;   // finished with STOP or LENGTH
  int64_t cancelled_requests = 0;
  int64_t failed_requests = 0;
  int64_t preemptions = 0;
  int64_t prefix_cache_queries = 0;  // full blocks looked up at admission
  int64_t prefix_cache_hits = 0;     // of those, reused
  int64_t cached_prompt_tokens = 0;  // prompt rows not recomputed thanks to the cache
  int64_t prompt_tokens = 0;         // spliced prompt rows admitted
  int64_t generated_tokens = 0;
  int64_t steps = 0;
  int last_batch_sequences = 0;
  int last_batch_tokens = 0;
  double step_time_ms_total = 0;
  // Where the step time goes (host view): scheduling + block allocation, the model runner's
  // Execute (device work and the logits copy), sampling, and token events to the streams.
  double schedule_ms_total = 0;
  double model_ms_total = 0;
  double sample_ms_total = 0;
  double stream_ms_total = 0;
};

}  // namespace glm4v::worker
