// Client side of grpc.health.v1: asks a server whether a service is SERVING.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace glm4v {

enum class ServingState { kServing, kNotServing, kUnknownService };

// UNAVAILABLE / DEADLINE_EXCEEDED when the server cannot be reached in `timeout`.
absl::StatusOr<ServingState> ProbeHealth(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::string& service, absl::Duration timeout);

// Polls until SERVING or `deadline`; OK when serving, else the last failure.
absl::Status WaitUntilServing(const std::string& address, const std::string& service,
                              absl::Time deadline);

}  // namespace glm4v
