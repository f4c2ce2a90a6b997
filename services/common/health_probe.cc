#include "services/common/health_probe.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"
#include "services/common/backend_channel.h"
#include "services/common/grpc_status.h"

namespace glm4v {

absl::StatusOr<ServingState> ProbeHealth(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& service, absl::Duration timeout) {
  grpc::health::v1::Health::Stub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub.Check(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return ServingState::kUnknownService;
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? ServingState::kServing
             : ServingState::kNotServing;
}

absl::Status WaitUntilServing(const std::string& address, const std::string& service,
                              absl::Time deadline) {
  std::shared_ptr<grpc::Channel> channel = CreateBackendChannel(address);
  absl::Status last = absl::DeadlineExceededError(absl::StrCat(address, " never answered"));
  while (absl::Now() < deadline) {
    absl::StatusOr<ServingState> state = ProbeHealth(channel, service, absl::Milliseconds(500));
    if (state.ok() && *state == ServingState::kServing) return absl::OkStatus();
    if (!state.ok()) {
      last = state.status();
    } else {
      last = absl::UnavailableError(absl::StrCat(address, " is not serving '", service, "'"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return last;
}

}  // namespace glm4v
