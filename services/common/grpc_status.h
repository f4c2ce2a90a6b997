// Conversions between absl::Status and grpc::Status, and gRPC code names for metric labels.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace glm4v {

// Same code (the two enums share numbering) and message.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// "OK", "INVALID_ARGUMENT", ... as in the gRPC spec; "UNKNOWN" for out-of-range values.
std::string GrpcCodeName(grpc::StatusCode code);

}  // namespace glm4v
