// The OpenAI HTTP front against the real stack (vision + worker + gateway on the tiny model):
// an OpenAiHttpServer in this process talks gRPC to the real gateway, and the gateway's own
// --http_port is checked to serve the same API.
#include <httplib.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/metrics/exposition_parser.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/openai/openai_http_server.h"
#include "tests/openai/raw_http.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

using nlohmann::json;

constexpr char kModel[] = "tiny-glm4v";

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double MetricSum(const std::string& text, const std::string& family) {
  auto parsed = metrics::ParseExposition(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!parsed.ok()) return -1;
  const metrics::ParsedFamily* f = parsed->FindFamily(family);
  if (f == nullptr) return 0;
  double sum = 0;
  for (const auto& s : f->samples) sum += s.value;
  return sum;
}

class OpenAiE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions options;
    options.gateway_flags = {"--max_images_per_request=1"};
    auto stack = Stack::Start(options);
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = stack->release();
    openai::OpenAiHttpServer::Options http;
    http.host = "127.0.0.1";
    http.model_name = kModel;
    auto front = openai::OpenAiHttpServer::Start(
        grpc::CreateChannel(stack_->gateway_address(), grpc::InsecureChannelCredentials()), http);
    ASSERT_TRUE(front.ok()) << front.status();
    front_ = front->release();
  }
  static void TearDownTestSuite() {
    delete front_;
    delete stack_;
  }

  void SetUp() override {
    ASSERT_NE(front_, nullptr);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", front_->port());
    client_->set_read_timeout(60, 0);
  }

  httplib::Result PostChat(const json& body) {
    return client_->Post("/v1/chat/completions", body.dump(), "application/json");
  }
  static json Body(const httplib::Result& r) {
    return json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  }
  static json Question(int max_tokens) {
    return {{"model", kModel},
            {"messages", {{{"role", "user"}, {"content", "Tell me about the sea."}}}},
            {"max_tokens", max_tokens},
            {"temperature", 0}};
  }
  // Runs a streaming request to completion and returns the parsed events ("[DONE]" kept).
  static std::vector<json> Stream(int port, const json& body) {
    auto conn = RawHttpConnection::Connect(port);
    EXPECT_TRUE(conn.ok());
    EXPECT_TRUE(conn->SendPost("/v1/chat/completions", body.dump()).ok());
    auto resp = conn->ReadResponse(60000);
    EXPECT_TRUE(resp.ok()) << resp.status();
    std::vector<json> events;
    if (!resp.ok()) return events;
    EXPECT_EQ(resp->status, 200) << resp->body;
    EXPECT_NE(resp->headers.find("text/event-stream"), std::string::npos) << resp->headers;
    for (const std::string& p : SseDataPayloads(resp->body)) {
      events.push_back(p == "[DONE]" ? json("[DONE]") : json::parse(p, nullptr, false));
    }
    return events;
  }

  static Stack* stack_;
  static openai::OpenAiHttpServer* front_;
  std::unique_ptr<httplib::Client> client_;
};

Stack* OpenAiE2eTest::stack_ = nullptr;
openai::OpenAiHttpServer* OpenAiE2eTest::front_ = nullptr;

TEST_F(OpenAiE2eTest, NonStreamingCompletion) {
  auto r = PostChat(Question(8));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Body(r);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], kModel);
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
  const int completion = j["usage"]["completion_tokens"];
  EXPECT_GT(completion, 0);
  EXPECT_LE(completion, 8);
  if (finish == "length") {
    EXPECT_EQ(completion, 8);
  }
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + completion);
}

TEST_F(OpenAiE2eTest, StreamingMatchesNonStreamingUnderGreedy) {
  json body = Question(10);
  body["ignore_eos"] = true;
  auto r = PostChat(body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json unary = Body(r);
  EXPECT_EQ(unary["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(unary["usage"]["completion_tokens"], 10);

  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  std::vector<json> ev = Stream(front_->port(), body);
  ASSERT_GE(ev.size(), 4u);
  EXPECT_EQ(ev.back(), "[DONE]");
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  int finishes = 0;
  for (size_t i = 0; i + 2 < ev.size(); ++i) {
    EXPECT_EQ(ev[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(ev[i]["id"], ev[0]["id"]);
    const json& choice = ev[i]["choices"][0];
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) {
      ++finishes;
      EXPECT_EQ(choice["finish_reason"], "length");
    }
  }
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(text, unary["choices"][0]["message"]["content"].get<std::string>());
  const json& usage_chunk = ev[ev.size() - 2];
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 10);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], unary["usage"]["prompt_tokens"]);
}

TEST_F(OpenAiE2eTest, ImageAsDataUrl) {
  const std::string png = ReadFileOrDie("tests/data/tiny-glm4v/image0.png");
  json text_only = Question(4);
  auto t = PostChat(text_only);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;

  json with_image = Question(4);
  with_image["messages"][0]["content"] = {
      {{"type", "image_url"},
       {"image_url", {{"url", "data:image/png;base64," + absl::Base64Escape(png)}}}},
      {{"type", "text"}, {"text", "Tell me about the sea."}}};
  auto r = PostChat(with_image);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  // The image rows replace its 3 marker tokens: the prompt grows by much more than 3.
  EXPECT_GT(Body(r)["usage"]["prompt_tokens"].get<int>(),
            Body(t)["usage"]["prompt_tokens"].get<int>() + 3);
}

TEST_F(OpenAiE2eTest, GatewayRejectionsMapToHttpCodes) {
  // Two images with --max_images_per_request=1: the gateway's INVALID_ARGUMENT becomes 400.
  const std::string url =
      "data:image/png;base64," + absl::Base64Escape(ReadFileOrDie("tests/data/tiny-glm4v/image0.png"));
  json body = Question(4);
  body["messages"][0]["content"] = {{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                    {{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                    {{"type", "text"}, {"text", "compare"}}};
  auto r = PostChat(body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(Body(r)["error"]["type"], "invalid_request_error");

  // Same for a stream: rejected before the first event, so an HTTP error, not a 200 stream.
  body["stream"] = true;
  r = PostChat(body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;

  // Bytes that are no image: rejected by the stack (vision decode), never a 200.
  json bad = Question(4);
  bad["messages"][0]["content"] = {
      {{"type", "image_url"},
       {"image_url", {{"url", "data:image/png;base64," + absl::Base64Escape("not an image")}}}}};
  r = PostChat(bad);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(OpenAiE2eTest, ClientDisconnectCancelsGeneration) {
  auto before = stack_->ScrapeMetrics(Stack::kWorker);
  ASSERT_TRUE(before.ok());
  const double generated_before = MetricSum(*before, "glm4v_worker_generated_tokens_total");

  json body = Question(1800);
  body["ignore_eos"] = true;
  body["stream"] = true;
  {
    auto conn = RawHttpConnection::Connect(front_->port());
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn->SendPost("/v1/chat/completions", body.dump()).ok());
    // Wait for real content (beyond the role chunk), then hang up.
    auto got = conn->ReadUntil("\"content\":\"", 30000);
    ASSERT_TRUE(got.ok()) << got.status();
    auto more = conn->ReadUntil("data: ", 30000);
    ASSERT_TRUE(more.ok());
  }  // closes the socket
  // The worker must drop the sequence well before 1800 tokens.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  glm4v::internal::WorkerStats stats;
  while (absl::Now() < deadline) {
    auto s = stack_->WorkerStats();
    ASSERT_TRUE(s.ok()) << s.status();
    stats = *s;
    if (stats.running() == 0 && stats.waiting() == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(stats.running(), 0u);
  auto after = stack_->ScrapeMetrics(Stack::kWorker);
  ASSERT_TRUE(after.ok());
  const double generated = MetricSum(*after, "glm4v_worker_generated_tokens_total") - generated_before;
  EXPECT_GT(generated, 0);
  EXPECT_LT(generated, 1800) << "generation ran to the end although the client left";
}

TEST_F(OpenAiE2eTest, GatewayHttpPortServesTheApi) {
  httplib::Client gw("127.0.0.1", stack_->http_port());
  gw.set_read_timeout(60, 0);
  auto models = gw.Get("/v1/models");
  ASSERT_TRUE(models) << "gateway does not serve --http_port";
  ASSERT_EQ(models->status, 200);
  json list = Body(models);
  ASSERT_EQ(list["data"].size(), 1u);
  const std::string name = list["data"][0]["id"];
  json body = Question(6);
  body["model"] = name;
  auto r = gw.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  // Same engine, same greedy answer as through the in-test front.
  auto direct = PostChat(Question(6));
  ASSERT_TRUE(direct);
  EXPECT_EQ(Body(r)["choices"][0]["message"]["content"],
            Body(direct)["choices"][0]["message"]["content"]);
  auto health = gw.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace glm4v::testing
