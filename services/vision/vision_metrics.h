// The vision service's Prometheus metrics (names fixed by docs/SERVICES.md).
#pragma once

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"

namespace glm4v {

struct VisionMetrics {
  metrics::Family<metrics::Counter>* requests = nullptr;  // {code}
  metrics::Histogram* encode_seconds = nullptr;
  metrics::Histogram* batch_size = nullptr;
  metrics::Gauge* queue_depth = nullptr;
  metrics::Counter* cache_hits = nullptr;
  metrics::Counter* cache_misses = nullptr;

  static absl::StatusOr<VisionMetrics> Register(metrics::Registry* registry);
};

}  // namespace glm4v
