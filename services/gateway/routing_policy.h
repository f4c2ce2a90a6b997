// Which decoder worker takes a request. Two policies:
//
//  kCacheAware (default; in the spirit of llm-d's prefix + queue + KV scorers and SGLang's
//    cache-aware router): for each healthy worker, the prompt rows it would have to compute
//    (the prompt minus the blocks the gateway expects in its prefix cache, PrefixIndex) plus
//    `load_token_cost` rows per sequence already running or waiting there, inflated when its KV
//    cache is nearly full (it would preempt or evict). The cheapest wins; with no cached blocks
//    anywhere this is least-loaded.
//  kAffinityHash (the previous policy, kept for comparison): least loaded, unless the worker a
//    hash of the first prompt ids and the first image picks is within kAffinitySlack of it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace glm4v {

enum class RoutingPolicy { kCacheAware, kAffinityHash };

absl::StatusOr<RoutingPolicy> ParseRoutingPolicy(const std::string& name);

struct RoutingOptions {
  RoutingPolicy policy = RoutingPolicy::kCacheAware;
  // Prefill rows one queued or running sequence is worth when comparing workers.
  double load_token_cost = 256;
  // KV usage above which a worker's cost grows (x3 at a full cache).
  double kv_pressure_start = 0.9;
  int affinity_slack = 2;
};

struct RoutingCandidate {
  int load = 0;             // running + waiting as reported, plus streams opened since
  double kv_usage = 0;      // used / capacity blocks, as reported
  int cached_rows = 0;      // prompt rows expected in its prefix cache
};

// Index into `candidates` (non-empty) of the worker the cache-aware policy picks for a prompt
// of `prompt_rows`; ties go to the lower load, then the lower index.
int ChooseCacheAware(absl::Span<const RoutingCandidate> candidates, int prompt_rows,
                     const RoutingOptions& options);

}  // namespace glm4v
