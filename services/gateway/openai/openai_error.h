// OpenAI's error shape {"error": {"message", "type", "param", "code"}} and the HTTP status that
// goes with each gRPC status of the gateway.
#pragma once

#include <string>

#include "grpcpp/support/status.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {

struct OpenAiError {
  int http_status = 500;
  std::string message;
  std::string type = "server_error";
  std::string param;  // empty: JSON null
  std::string code;   // empty: JSON null
};

// 400 invalid_request_error naming the offending field (`param`, e.g. "messages[0].role").
OpenAiError InvalidRequest(std::string message, std::string param = "");

// INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, CANCELLED 499, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, everything else 500.
int HttpStatusForGrpcCode(grpc::StatusCode code);

// The error a failed gRPC call becomes (message kept, type/code from the status).
OpenAiError ErrorFromGrpcStatus(const grpc::Status& status);

nlohmann::json ErrorToJson(const OpenAiError& error);

}  // namespace glm4v::openai
