#include "services/gateway/vision_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "services/common/backend_channel.h"
#include "services/common/grpc_status.h"
#include "services/common/health_probe.h"

namespace glm4v {

VisionClient::VisionClient(const std::string& address, internal::FeatureDType feature_dtype,
                           const GatewayMetrics* metrics, absl::Duration poll_interval)
    : address_(address),
      feature_dtype_(feature_dtype),
      channel_(CreateBackendChannel(address, /*round_robin=*/true)),
      stub_(internal::VisionEncoder::NewStub(channel_)) {
  if (metrics != nullptr) {
    up_gauge_ = &metrics->backend_up->WithLabels({"vision", address});
    poller_ = std::thread([this, poll_interval]() { PollLoop(poll_interval); });
  }
}

VisionClient::~VisionClient() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

void VisionClient::PollLoop(absl::Duration interval) {
  do {
    absl::StatusOr<ServingState> state =
        ProbeHealth(channel_, "glm4v.internal.VisionEncoder", absl::Milliseconds(500));
    up_gauge_->Set(state.ok() && *state == ServingState::kServing ? 1 : 0);
  } while (!stop_.WaitForNotificationWithTimeout(interval));
}

absl::StatusOr<internal::EncodeResponse> VisionClient::Encode(
    const std::vector<const v1::ImagePart*>& images, const std::string& request_id,
    absl::Time deadline) {
  internal::EncodeRequest request;
  request.set_request_id(request_id);
  request.set_dtype(feature_dtype_);
  for (const v1::ImagePart* image : images) {
    internal::EncodeImage* out = request.add_images();
    out->set_data(image->data());
    out->set_mime_type(image->mime_type());
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  internal::EncodeResponse response;
  grpc::Status status = stub_->Encode(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("vision service ", address_, ": ", status.error_message()));
  }
  if (response.features_size() != static_cast<int>(images.size())) {
    return absl::InternalError(absl::StrCat("vision service answered ", response.features_size(),
                                            " features for ", images.size(), " images"));
  }
  return response;
}

}  // namespace glm4v
