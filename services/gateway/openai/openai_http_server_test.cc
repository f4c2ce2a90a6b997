#include "services/gateway/openai/openai_http_server.h"

#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/free_port.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;

// The backend is a real gRPC channel to a port nothing listens on: every call fails with
// UNAVAILABLE, which is exactly what the HTTP layer must turn into 503.
class OpenAiHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dead_port = PickFreePort();
    ASSERT_TRUE(dead_port.ok());
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(*dead_port),
                                       grpc::InsecureChannelCredentials());
    OpenAiHttpServer::Options options;
    options.host = "127.0.0.1";
    options.model_name = "tiny-glm4v";
    options.max_body_bytes = 4096;
    auto server = OpenAiHttpServer::Start(channel, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(10, 0);
  }

  static json Body(const httplib::Result& r) {
    return json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  }
  static void ExpectError(const httplib::Result& r, int status, const std::string& type) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    json j = Body(r);
    ASSERT_TRUE(j.is_object()) << r->body;
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_EQ(j["error"]["type"], type) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"].contains("param"));
    EXPECT_TRUE(j["error"].contains("code"));
  }

  std::unique_ptr<OpenAiHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(OpenAiHttpServerTest, ListsTheModel) {
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = Body(r);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "tiny-glm4v");
  EXPECT_EQ(j["data"][0]["object"], "model");

  r = client_->Get("/v1/models/tiny-glm4v");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Body(r)["id"], "tiny-glm4v");
  ExpectError(client_->Get("/v1/models/gpt-4"), 404, "invalid_request_error");
}

TEST_F(OpenAiHttpServerTest, HealthReflectsTheBackend) {
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
}

TEST_F(OpenAiHttpServerTest, MalformedJsonIs400) {
  ExpectError(client_->Post("/v1/chat/completions", "{not json", "application/json"), 400,
              "invalid_request_error");
  auto r = client_->Post("/v1/chat/completions", R"({"messages": [{"role": 1}]})",
                         "application/json");
  ExpectError(r, 400, "invalid_request_error");
  EXPECT_EQ(Body(r)["error"]["param"], "messages[0].role");
}

TEST_F(OpenAiHttpServerTest, OversizedBodyIs413) {
  const std::string big = R"({"messages": [{"role": "user", "content": ")" +
                          std::string(8000, 'x') + "\"}]}";
  auto r = client_->Post("/v1/chat/completions", big, "application/json");
  ExpectError(r, 413, "invalid_request_error");
}

TEST_F(OpenAiHttpServerTest, UnknownRouteIs404Json) {
  ExpectError(client_->Get("/v1/embeddings"), 404, "invalid_request_error");
}

TEST_F(OpenAiHttpServerTest, UnavailableBackendIs503) {
  const std::string body = R"({"model": "tiny-glm4v", "messages": [{"role": "user", "content": "hi"}]})";
  auto r = client_->Post("/v1/chat/completions", body, "application/json");
  ExpectError(r, 503, "server_error");
  EXPECT_EQ(Body(r)["error"]["code"], "service_unavailable");
  EXPECT_FALSE(r->get_header_value("X-Request-Id").empty());

  // A stream that fails before its first message is an HTTP error too, not a 200 event stream.
  const std::string stream_body =
      R"({"stream": true, "messages": [{"role": "user", "content": "hi"}]})";
  ExpectError(client_->Post("/v1/chat/completions", stream_body, "application/json"), 503,
              "server_error");
}

TEST_F(OpenAiHttpServerTest, CompletionsEndpointValidatesThenCallsTheBackend) {
  auto r = client_->Post("/v1/completions", R"({"prompt": "x", "echo": true})", "application/json");
  ExpectError(r, 400, "invalid_request_error");
  EXPECT_EQ(Body(r)["error"]["param"], "echo");
  ExpectError(client_->Post("/v1/completions", R"({"prompt": "x", "n": 2})", "application/json"),
              503, "server_error");
  ExpectError(client_->Post("/v1/completions", R"({"prompt": "x", "stream": true})",
                            "application/json"),
              503, "server_error");
}

TEST_F(OpenAiHttpServerTest, HttpImageUrlsNeedTheFetcher) {
  // This server was started without image_fetch: http(s) URLs are refused naming the part.
  auto r = client_->Post(
      "/v1/chat/completions",
      R"({"messages": [{"role": "user", "content": [{"type": "image_url",
          "image_url": {"url": "http://example.com/a.png"}}]}]})",
      "application/json");
  ExpectError(r, 400, "invalid_request_error");
  EXPECT_EQ(Body(r)["error"]["param"], "messages[0].content[0].image_url.url");
}

TEST_F(OpenAiHttpServerTest, AnAuthorizationHeaderThatCannotBeMetadataIs401) {
  // (DEL is not printable: gRPC metadata could not carry it, and no key contains it)
  httplib::Headers headers = {{"Authorization", "Bearer sk-\x7f-key"}};
  auto r = client_->Post("/v1/chat/completions", headers,
                         R"({"messages": [{"role": "user", "content": "hi"}]})",
                         "application/json");
  ExpectError(r, 401, "invalid_request_error");
  EXPECT_EQ(Body(r)["error"]["code"], "invalid_api_key");
  ExpectError(client_->Get("/v1/models", headers), 401, "invalid_request_error");
}

TEST_F(OpenAiHttpServerTest, CallerRequestIdIsEchoed) {
  httplib::Headers headers = {{"X-Request-Id", "my-req-1"}};
  auto r = client_->Post("/v1/chat/completions", headers,
                         R"({"messages": [{"role": "user", "content": "hi"}]})",
                         "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("X-Request-Id"), "my-req-1");
}

// A backend whose answer is a tool call's arguments that take 2.5 s to arrive.
class SlowToolCallBackend final : public glm4v::v1::Glm4vService::Service {
  grpc::Status GetModelInfo(grpc::ServerContext*, const glm4v::v1::GetModelInfoRequest*,
                            glm4v::v1::ModelInfo* info) override {
    info->set_model("tiny-glm4v");
    info->set_context_length(4096);
    return grpc::Status::OK;
  }
  grpc::Status GenerateStream(
      grpc::ServerContext* context, const glm4v::v1::GenerateRequest* request,
      grpc::ServerWriter<glm4v::v1::GenerateStreamResponse>* writer) override {
    assistant_prefix = request->assistant_prefix();
    glm4v::v1::GenerateStreamResponse m;
    m.set_text_delta("{\"city\":");
    writer->Write(m);
    for (int i = 0; i < 25 && !context->IsCancelled(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    m.set_text_delta(" \"Oslo\"}");
    m.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
    writer->Write(m);
    return grpc::Status::OK;
  }

 public:
  std::string assistant_prefix;
};

TEST(OpenAiHttpStreamTest, AHeldBackToolCallStreamSendsKeepAlives) {
  SlowToolCallBackend backend;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&backend);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  OpenAiHttpServer::Options options;
  options.host = "127.0.0.1";
  options.model_name = "tiny-glm4v";
  options.accepts_tools = true;
  auto server = OpenAiHttpServer::Start(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
      options);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(10, 0);
  const json body = {
      {"stream", true},
      {"messages", {{{"role", "user"}, {"content", "Weather in Oslo?"}}}},
      {"tools", {{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}},
      {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}};
  auto r = client.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(backend.assistant_prefix, "get_weather\n");
  // The held-back second is bridged by comments, then the call arrives whole.
  EXPECT_NE(r->body.find(": keep-alive\n\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("arguments":"{\"city\": \"Oslo\"}")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(R"("finish_reason":"tool_calls")"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);
  (*server)->Stop();
  grpc_server->Shutdown();
}

TEST_F(OpenAiHttpServerTest, StopIsIdempotent) {
  server_->Stop();
  server_->Stop();
  EXPECT_FALSE(client_->Get("/v1/models"));
}

}  // namespace
}  // namespace glm4v::openai
