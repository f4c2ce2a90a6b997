// The gateway's client of the vision-encoder service.
//
// Calls are fail-fast (no wait-for-ready): while the service is down they end with UNAVAILABLE
// at once instead of hanging until the deadline. A poller keeps the backend_up gauge current.
// Calls go round-robin over every address the target resolves to (a headless Service names
// every vision pod); the vision servers close connections every --max_connection_age_seconds,
// so the name is resolved again and pods the HPA added take their share.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "protos/glm4v/internal/vision.grpc.pb.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/gateway_metrics.h"

namespace glm4v {

class VisionClient {
 public:
  // `metrics` may be null.
  // `feature_dtype`: what the vision service sends back (bf16 halves the bytes; f32 keeps the
  // CPU path bit-exact with the float reference).
  VisionClient(const std::string& address, internal::FeatureDType feature_dtype,
               const GatewayMetrics* metrics,
               absl::Duration poll_interval = absl::Milliseconds(500));
  ~VisionClient();

  // One ImageFeatures per image, in order. Errors keep the vision service's code
  // (INVALID_ARGUMENT for undecodable images, UNAVAILABLE when it is down, ...).
  absl::StatusOr<internal::EncodeResponse> Encode(const std::vector<const v1::ImagePart*>& images,
                                                  const std::string& request_id,
                                                  absl::Time deadline);

  const std::string& address() const { return address_; }

 private:
  void PollLoop(absl::Duration interval);

  const std::string address_;
  const internal::FeatureDType feature_dtype_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<internal::VisionEncoder::Stub> stub_;
  metrics::Gauge* up_gauge_ = nullptr;
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace glm4v
