#include "services/gateway/routing_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace glm4v {

absl::StatusOr<RoutingPolicy> ParseRoutingPolicy(const std::string& name) {
  if (name == "cache_aware") return RoutingPolicy::kCacheAware;
  if (name == "affinity_hash") return RoutingPolicy::kAffinityHash;
  return absl::InvalidArgumentError(
      absl::StrCat("--routing=", name, ": expected cache_aware or affinity_hash"));
}

int ChooseCacheAware(absl::Span<const RoutingCandidate> candidates, int prompt_rows,
                     const RoutingOptions& options) {
  int best = 0;
  double best_cost = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const RoutingCandidate& c = candidates[i];
    double cost = std::max(0, prompt_rows - c.cached_rows) + c.load * options.load_token_cost;
    if (c.kv_usage > options.kv_pressure_start && options.kv_pressure_start < 1) {
      const double pressure = std::min(
          1.0, (c.kv_usage - options.kv_pressure_start) / (1 - options.kv_pressure_start));
      cost *= 1 + 2 * pressure;
    }
    const bool better = i == 0 || cost < best_cost ||
                        (cost == best_cost && c.load < candidates[best].load);
    if (better) {
      best = static_cast<int>(i);
      best_cost = cost;
    }
  }
  return best;
}

}  // namespace glm4v
