// The gateway's Prometheus metrics (names fixed by docs/SERVICES.md).
#pragma once

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"

namespace glm4v {

struct GatewayMetrics {
  metrics::Family<metrics::Counter>* requests = nullptr;            // {method, code}
  metrics::Family<metrics::Histogram>* request_duration = nullptr;  // {method}
  metrics::Histogram* time_to_first_token = nullptr;
  metrics::Histogram* time_per_output_token = nullptr;
  metrics::Histogram* queue_time = nullptr;
  metrics::Gauge* queue_depth = nullptr;
  metrics::Gauge* inflight = nullptr;
  metrics::Counter* prompt_tokens = nullptr;
  metrics::Counter* completion_tokens = nullptr;
  metrics::Family<metrics::Gauge>* backend_up = nullptr;  // {backend, address}

  static absl::StatusOr<GatewayMetrics> Register(metrics::Registry* registry);
};

}  // namespace glm4v
