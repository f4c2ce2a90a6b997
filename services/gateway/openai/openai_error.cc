#include "services/gateway/openai/openai_error.h"

#include <utility>

namespace glm4v::openai {
namespace {

nlohmann::json StringOrNull(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

OpenAiError InvalidRequest(std::string message, std::string param) {
  OpenAiError e;
  e.http_status = 400;
  e.message = std::move(message);
  e.type = "invalid_request_error";
  e.param = std::move(param);
  return e;
}

int HttpStatusForGrpcCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    // 499 is nginx's "client closed request": the call was cancelled on the caller's side.
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

OpenAiError ErrorFromGrpcStatus(const grpc::Status& status) {
  OpenAiError e;
  e.http_status = HttpStatusForGrpcCode(status.error_code());
  e.message = status.error_message().empty() ? "request failed" : status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      e.type = "invalid_request_error";
      break;
    case grpc::StatusCode::NOT_FOUND:
      e.type = "invalid_request_error";
      e.code = "not_found";
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      // OpenAI's answer to a missing or wrong key.
      e.type = "invalid_request_error";
      e.code = "invalid_api_key";
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      e.type = "invalid_request_error";
      e.code = "permission_denied";
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // What OpenAI's own API answers when a caller must back off and retry.
      e.type = "rate_limit_exceeded";
      e.code = "rate_limit_exceeded";
      break;
    case grpc::StatusCode::CANCELLED:
      e.type = "invalid_request_error";
      e.code = "cancelled";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      e.code = "service_unavailable";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      e.code = "timeout";
      break;
    default:
      break;
  }
  return e;
}

nlohmann::json ErrorToJson(const OpenAiError& error) {
  return {{"error",
           {{"message", error.message},
            {"type", error.type},
            {"param", StringOrNull(error.param)},
            {"code", StringOrNull(error.code)}}}};
}

}  // namespace glm4v::openai
