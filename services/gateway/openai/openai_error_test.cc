#include "services/gateway/openai/openai_error.h"

#include "gtest/gtest.h"
#include "services/gateway/openai/json_dump.h"

namespace glm4v::openai {
namespace {

TEST(OpenAiErrorTest, GrpcCodesMapToHttpStatuses) {
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "x")).code,
            "invalid_api_key");
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::CANCELLED), 499);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusForGrpcCode(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  for (auto code : {grpc::StatusCode::UNKNOWN, grpc::StatusCode::INTERNAL,
                    grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::UNIMPLEMENTED,
                    grpc::StatusCode::DATA_LOSS}) {
    EXPECT_EQ(HttpStatusForGrpcCode(code), 500) << code;
  }
}

TEST(OpenAiErrorTest, InvalidArgumentKeepsMessageAndType) {
  OpenAiError e =
      ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "prompt too long"));
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.message, "prompt too long");
  EXPECT_EQ(e.type, "invalid_request_error");
}

TEST(OpenAiErrorTest, OverloadIsRateLimit) {
  OpenAiError e = ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full"));
  EXPECT_EQ(e.http_status, 429);
  EXPECT_EQ(e.code, "rate_limit_exceeded");
}

TEST(OpenAiErrorTest, ServerErrorsHaveServerType) {
  EXPECT_EQ(ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "x")).type,
            "server_error");
  OpenAiError e = ErrorFromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""));
  EXPECT_EQ(e.type, "server_error");
  EXPECT_EQ(e.code, "service_unavailable");
  EXPECT_FALSE(e.message.empty());  // never an empty message, even from an empty status
}

TEST(OpenAiErrorTest, JsonShapeHasNullsForMissingParamAndCode) {
  nlohmann::json j = ErrorToJson(InvalidRequest("bad", ""));
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_TRUE(j["error"]["code"].is_null());
  nlohmann::json k = ErrorToJson(InvalidRequest("bad", "messages[0].role"));
  EXPECT_EQ(k["error"]["param"], "messages[0].role");
}

TEST(OpenAiErrorTest, DumpJsonReplacesInvalidUtf8) {
  const std::string bad = std::string("ok") + static_cast<char>(0xC3);
  std::string out = DumpJson(nlohmann::json{{"t", bad}});
  EXPECT_NE(out.find("ok\xEF\xBF\xBD"), std::string::npos) << out;
}

}  // namespace
}  // namespace glm4v::openai
