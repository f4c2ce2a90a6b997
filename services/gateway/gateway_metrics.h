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
  // Per API key (only with --api_keys_file): the key's id, never the key.
  metrics::Family<metrics::Counter>* key_requests = nullptr;  // {key_id, code}
  metrics::Family<metrics::Counter>* key_tokens = nullptr;    // {key_id, kind=prompt|completion}
  metrics::Family<metrics::Gauge>* key_inflight = nullptr;    // {key_id}

  static absl::StatusOr<GatewayMetrics> Register(metrics::Registry* registry);
};

}  // namespace glm4v
