#include "services/vision/vision_metrics.h"

#include "common/status_macros.h"

namespace glm4v {

absl::StatusOr<VisionMetrics> VisionMetrics::Register(metrics::Registry* registry) {
  VisionMetrics m;
  ASSIGN_OR_RETURN(m.requests,
                   registry->AddCounterFamily("glm4v_vision_requests_total",
                                              "Encode RPCs by gRPC status code.", {"code"}));
  ASSIGN_OR_RETURN(m.encode_seconds, registry->AddHistogram("glm4v_vision_encode_seconds",
                                                            "Vision tower time per batch.",
                                                            metrics::DefaultLatencyBuckets()));
  ASSIGN_OR_RETURN(m.batch_size,
                   registry->AddHistogram("glm4v_vision_batch_size", "Images per tower batch.",
                                          {1, 2, 4, 8, 16, 32, 64}));
  ASSIGN_OR_RETURN(m.queue_depth, registry->AddGauge("glm4v_vision_queue_depth",
                                                     "Images waiting for a tower batch."));
  ASSIGN_OR_RETURN(m.cache_hits, registry->AddCounter("glm4v_vision_cache_hits_total",
                                                      "Images answered from the feature cache."));
  ASSIGN_OR_RETURN(m.cache_misses, registry->AddCounter("glm4v_vision_cache_misses_total",
                                                        "Images that had to be encoded."));
  return m;
}

}  // namespace glm4v
