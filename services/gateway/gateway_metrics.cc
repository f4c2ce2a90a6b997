#include "services/gateway/gateway_metrics.h"

#include "common/status_macros.h"

namespace glm4v {

absl::StatusOr<GatewayMetrics> GatewayMetrics::Register(metrics::Registry* registry) {
  GatewayMetrics m;
  const std::vector<double> latency = metrics::DefaultLatencyBuckets();
  ASSIGN_OR_RETURN(m.requests, registry->AddCounterFamily("glm4v_gateway_requests_total",
                                                          "Requests by method and gRPC code.",
                                                          {"method", "code"}));
  ASSIGN_OR_RETURN(m.request_duration,
                   registry->AddHistogramFamily("glm4v_gateway_request_duration_seconds",
                                                "End-to-end request time.", {"method"}, latency));
  ASSIGN_OR_RETURN(m.time_to_first_token,
                   registry->AddHistogram("glm4v_gateway_time_to_first_token_seconds",
                                          "Request arrival to first generated token.", latency));
  ASSIGN_OR_RETURN(m.time_per_output_token,
                   registry->AddHistogram("glm4v_gateway_time_per_output_token_seconds",
                                          "Decode time per generated token after the first.",
                                          metrics::ExponentialBuckets(0.0005, 2, 16)));
  ASSIGN_OR_RETURN(m.queue_time, registry->AddHistogram(
                                     "glm4v_gateway_queue_time_seconds",
                                     "Gateway admission wait plus worker queue time.", latency));
  ASSIGN_OR_RETURN(m.queue_depth, registry->AddGauge("glm4v_gateway_queue_depth",
                                                     "Requests admitted, not yet streaming."));
  ASSIGN_OR_RETURN(
      m.inflight, registry->AddGauge("glm4v_gateway_inflight_requests", "Requests being handled."));
  ASSIGN_OR_RETURN(m.prompt_tokens, registry->AddCounter("glm4v_gateway_prompt_tokens_total",
                                                         "Prompt tokens after the image splice."));
  ASSIGN_OR_RETURN(
      m.completion_tokens,
      registry->AddCounter("glm4v_gateway_completion_tokens_total", "Generated tokens."));
  ASSIGN_OR_RETURN(m.backend_up,
                   registry->AddGaugeFamily("glm4v_gateway_backend_up",
                                            "1 when the backend answers health/stats probes.",
                                            {"backend", "address"}));
  ASSIGN_OR_RETURN(m.key_requests,
                   registry->AddCounterFamily("glm4v_gateway_api_key_requests_total",
                                              "Requests per API key id and gRPC code.",
                                              {"key_id", "code"}));
  ASSIGN_OR_RETURN(m.key_tokens,
                   registry->AddCounterFamily("glm4v_gateway_api_key_tokens_total",
                                              "Prompt and completion tokens per API key id.",
                                              {"key_id", "kind"}));
  ASSIGN_OR_RETURN(m.key_inflight,
                   registry->AddGaugeFamily("glm4v_gateway_api_key_inflight_requests",
                                            "Requests in flight per API key id.", {"key_id"}));
  return m;
}

}  // namespace glm4v
