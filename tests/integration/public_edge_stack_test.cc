// The public edge on the real stack: API keys (gRPC metadata and HTTP Bearer, per-key metrics,
// a per-key concurrency limit, reload on SIGHUP), TLS on the gateway's gRPC and HTTPS ports and
// mutual TLS on the internal hops to the vision service and the workers, with certificates the
// test makes; then the OpenAI API's newer parts on the tiny model: /v1/completions, n > 1
// sharing the prompt's KV blocks, logit_bias and penalties, http(s) image URLs, and tools on a
// text-only (GLM-4-9B-chat layout) model.
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/metrics/exposition_parser.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/backend_channel.h"
#include "services/common/health_probe.h"
#include "services/common/tls_credentials.h"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"
#include "tests/tls/test_certificates.h"

namespace glm4v::testing {
namespace {

using nlohmann::json;

constexpr char kTeamKey[] = "sk-team-a-0123456789";
constexpr char kSoloKey[] = "sk-one-at-a-time-0001";
constexpr char kNewKey[] = "sk-rotated-in-000001";

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);  // atomic, as a Secret update
}

grpc::Status ModelInfo(v1::Glm4vService::Stub* stub, const std::string& authorization) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  v1::ModelInfo info;
  return stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
}

json ChatBody(const std::string& content) {
  return {{"messages", {{{"role", "user"}, {"content", content}}}},
          {"max_tokens", 4},
          {"temperature", 0}};
}

// Runs a shell command; its exit code and what it printed (stdout and stderr).
std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The sample's value; -1 when absent.
double MetricValue(const std::string& text, const std::string& name,
                   const metrics::LabelMap& labels) {
  auto parsed = metrics::ParseExposition(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!parsed.ok()) return -1;
  return parsed->Value(name, labels).value_or(-1);
}

class PublicEdgeTest : public ::testing::Test {
 protected:
  void TearDown() override { SetBackendChannelCredentials(grpc::InsecureChannelCredentials()); }
};

TEST_F(PublicEdgeTest, KeysTlsAndMutualTlsThroughTheWholeStack) {
  auto certs = MakeTestCertificates("edge");
  ASSERT_TRUE(certs.ok()) << certs.status();
  const std::string dir = *certs + "/";
  const std::string keys_path = dir + "api_keys";
  WriteFile(keys_path, absl::StrCat("# test keys\n", kTeamKey, " id=team-a\n", kSoloKey,
                                    " id=solo max_concurrent=1\n"));
  // This process's probes: the CA, and a client certificate for the workers' and vision's mTLS.
  auto probe = ChannelCredentialsFromFiles({dir + "ca.pem", dir + "client.pem", dir + "client.key"});
  ASSERT_TRUE(probe.ok()) << probe.status();
  SetBackendChannelCredentials(*probe);

  StackOptions options;
  const std::vector<std::string> internal_server = {
      "--tls_cert=" + dir + "server.pem", "--tls_key=" + dir + "server.key",
      "--tls_ca=" + dir + "ca.pem"};
  options.worker_flags = internal_server;
  options.vision_flags = internal_server;
  options.gateway_flags = {"--api_keys_file=" + keys_path,
                           "--tls_cert=" + dir + "server.pem",
                           "--tls_key=" + dir + "server.key",
                           "--backend_tls_ca=" + dir + "ca.pem",
                           "--backend_tls_cert=" + dir + "client.pem",
                           "--backend_tls_key=" + dir + "client.key",
                           // Only SIGHUP reloads the keys in this test.
                           "--config_poll_interval_ms=600000"};
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  const std::string team = absl::StrCat("Bearer ", kTeamKey);

  // gRPC: no key, a wrong key, a malformed header; health stays open.
  EXPECT_EQ(ModelInfo(stub.get(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ModelInfo(stub.get(), "Bearer sk-wrong-key-000000").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ModelInfo(stub.get(), kTeamKey).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ModelInfo(stub.get(), team).ok());
  auto health = ProbeHealth(CreateBackendChannel(stack.gateway_address()), "", absl::Seconds(5));
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, ServingState::kServing);
  {
    // An image question: gateway -> vision and gateway -> worker both over mutual TLS.
    grpc::ClientContext context;
    context.AddMetadata("authorization", team);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    v1::GenerateResponse response;
    const grpc::Status status =
        stub->Generate(&context, ChatRequest("What is in the image?", Image0Png(), 4), &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << stack.LogTail(Stack::kGateway);
    EXPECT_EQ(response.usage().completion_tokens(), 4u);
  }
  // The internal ports refuse callers without a certificate from the CA, and plaintext.
  auto plain = grpc::CreateChannel(stack.worker_address(), grpc::InsecureChannelCredentials());
  EXPECT_FALSE(ProbeHealth(plain, "", absl::Seconds(2)).ok());
  auto no_client_cert = ChannelCredentialsFromFiles({dir + "ca.pem", "", ""});
  ASSERT_TRUE(no_client_cert.ok());
  EXPECT_FALSE(
      ProbeHealth(grpc::CreateChannel(stack.vision_address(), *no_client_cert), "", absl::Seconds(2))
          .ok());
  // The public gRPC port needs TLS but no client certificate.
  EXPECT_TRUE(ProbeHealth(grpc::CreateChannel(stack.gateway_address(), *no_client_cert), "",
                          absl::Seconds(5))
                  .ok());

  // HTTPS: the same keys, OpenAI's 401 shape; /health open; plaintext HTTP refused.
  httplib::SSLClient https("127.0.0.1", stack.http_port());
  https.set_ca_cert_path((dir + "ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  https.set_read_timeout(60, 0);
  auto r = https.Post("/v1/chat/completions", ChatBody("hi").dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 401) << r->body;
  json error = json::parse(r->body);
  EXPECT_EQ(error["error"]["code"], "invalid_api_key");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  r = https.Get("/v1/models");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // The key is checked before the body: no key and a malformed body is still 401, not 400.
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    r = https.Post(path, "{}", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path << ": " << r->body;
  }
  r = https.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  httplib::Headers auth = {{"Authorization", team}};
  r = https.Post("/v1/chat/completions", auth, ChatBody("hi").dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = https.Get("/v1/models", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  httplib::Client plaintext("127.0.0.1", stack.http_port());
  plaintext.set_read_timeout(5, 0);
  auto plain_response = plaintext.Get("/health");
  EXPECT_TRUE(!plain_response || plain_response->status != 200);
  httplib::SSLClient wrong_ca("127.0.0.1", stack.http_port());
  wrong_ca.set_ca_cert_path((dir + "other_ca.pem").c_str());
  wrong_ca.enable_server_certificate_verification(true);
  EXPECT_FALSE(wrong_ca.Get("/health"));

  // Image URLs to loopback are refused by default (SSRF guard), before anything is fetched.
  json image_url_body = {
      {"messages",
       {{{"role", "user"},
         {"content",
          {{{"type", "image_url"},
            {"image_url", {{"url", "http://127.0.0.1:9/cat.png"}}}}}}}}}};
  r = https.Post("/v1/chat/completions", auth, image_url_body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "messages[0].content[0].image_url.url");
  EXPECT_TRUE(absl::StrContains(r->body, "--allow_private_image_urls")) << r->body;

  // max_concurrent=1: while one request of the key runs, a second gets RESOURCE_EXHAUSTED/429.
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kSoloKey));
    v1::GenerateRequest long_request = ChatRequest("Count.", "", 400);
    auto reader = stub->GenerateStream(&context, long_request);
    v1::GenerateStreamResponse first;
    ASSERT_TRUE(reader->Read(&first));
    grpc::ClientContext second;
    second.AddMetadata("authorization", absl::StrCat("Bearer ", kSoloKey));
    v1::GenerateResponse ignored;
    const grpc::Status refused = stub->Generate(&second, ChatRequest("hi", "", 2), &ignored);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_TRUE(absl::StrContains(refused.error_message(), "'solo'")) << refused.error_message();
    httplib::Headers solo = {{"Authorization", absl::StrCat("Bearer ", kSoloKey)}};
    r = https.Post("/v1/chat/completions", solo, ChatBody("hi").dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429) << r->body;
    // Another key is not limited by it.
    EXPECT_TRUE(ModelInfo(stub.get(), team).ok());
    context.TryCancel();
    while (reader->Read(&first)) {
    }
    reader->Finish();
  }
  // One HTTP request is one request of the key, however many choices it fans out into.
  {
    httplib::Headers solo = {{"Authorization", absl::StrCat("Bearer ", kSoloKey)}};
    json body = ChatBody("hi");
    body["n"] = 3;
    body["temperature"] = 1;
    body["seed"] = 7;
    r = https.Post("/v1/chat/completions", solo, body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["choices"].size(), 3u) << r->body;
  }

  // The project's own clients against the locked-down gateway: the CA and a key file.
  {
    WriteFile(dir + "team.key", absl::StrCat(kTeamKey, "\n"));
    const std::string edge = absl::StrCat(" --tls_ca=", dir, "ca.pem --api_key_file=", dir,
                                          "team.key");
    auto [code, out] = RunCommand(absl::StrCat(RunfilePath("tools/client/client"), " --address=",
                                               stack.gateway_address(), edge,
                                               " --max_tokens=3 --ignore_eos What is it?"));
    EXPECT_EQ(code, 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "completion_tokens=3")) << out;
    const std::string loadgen = absl::StrCat(
        RunfilePath("tools/loadgen/loadgen"), " --target=", stack.gateway_address(),
        " --num_requests=4 --max_concurrency=2 --input_len=8 --output_len=3 --model_dir=",
        RunfilePath("tests/data/tiny-glm4v/model"));
    std::tie(code, out) = RunCommand(loadgen + edge);
    EXPECT_EQ(code, 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "succeeded           4")) << out;
    // Without the key every request is refused; without the CA there is no connection.
    std::tie(code, out) = RunCommand(absl::StrCat(loadgen, " --tls_ca=", dir, "ca.pem"));
    EXPECT_NE(code, 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "error UNAUTHENTICATED 4")) << out;
    std::tie(code, out) = RunCommand(absl::StrCat(loadgen, " --api_key_file=", dir, "team.key"));
    EXPECT_NE(code, 0) << out;
    EXPECT_TRUE(absl::StrContains(out, "cannot connect")) << out;
  }

  // Per-key metrics carry the key's id, never the key.
  auto scraped = stack.ScrapeMetrics(Stack::kGateway);
  ASSERT_TRUE(scraped.ok());
  EXPECT_GE(MetricValue(*scraped, "glm4v_gateway_api_key_requests_total",
                        {{"key_id", "team-a"}, {"code", "OK"}}),
            2);
  EXPECT_GE(MetricValue(*scraped, "glm4v_gateway_api_key_requests_total",
                        {{"key_id", "solo"}, {"code", "RESOURCE_EXHAUSTED"}}),
            1);
  EXPECT_GT(MetricValue(*scraped, "glm4v_gateway_api_key_tokens_total",
                        {{"key_id", "team-a"}, {"kind", "completion"}}),
            0);
  EXPECT_FALSE(absl::StrContains(*scraped, "sk-"));

  // Rotation: the new file is taken on SIGHUP (polling is off in this test), the old key goes.
  WriteFile(keys_path, absl::StrCat(kNewKey, " id=rotated\n"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(ModelInfo(stub.get(), team).ok()) << "reloaded without a signal";
  ASSERT_EQ(::kill(stack.pid(Stack::kGateway), SIGHUP), 0);
  bool rotated = false;
  for (int i = 0; i < 50 && !rotated; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    rotated = ModelInfo(stub.get(), absl::StrCat("Bearer ", kNewKey)).ok();
  }
  EXPECT_TRUE(rotated) << stack.LogTail(Stack::kGateway);
  EXPECT_EQ(ModelInfo(stub.get(), team).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A broken file is refused and the keys in use stay.
  WriteFile(keys_path, "short\n");
  ASSERT_EQ(::kill(stack.pid(Stack::kGateway), SIGHUP), 0);
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(ModelInfo(stub.get(), absl::StrCat("Bearer ", kNewKey)).ok());
  // Keys never reach the logs.
  const std::string log = ReadFileOrDie(stack.log_path(Stack::kGateway));
  for (const char* key : {kTeamKey, kSoloKey, kNewKey}) {
    EXPECT_FALSE(absl::StrContains(log, key)) << key;
  }
}

// An HTTP server on loopback for the image URL (the stack allows private addresses here).
class ImageServer {
 public:
  explicit ImageServer(std::string png) {
    server_.Get("/cat.png", [png, this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_content(png, "image/png");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ImageServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  int hits() const { return hits_.load(); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> hits_{0};
};

json PostJson(httplib::Client& http, const std::string& path, const json& body) {
  auto r = http.Post(path, body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return json();
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body, nullptr, false);
}

TEST_F(PublicEdgeTest, CompletionsChoicesBiasAndImageUrlsOnTheTinyModel) {
  StackOptions options;
  options.gateway_flags = {"--allow_private_image_urls"};
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  httplib::Client http("127.0.0.1", stack.http_port());
  http.set_read_timeout(60, 0);

  // /v1/completions: the text continues [gMASK]<sop> + prompt, as GenerateRequest.prompt does.
  v1::GenerateRequest plain;
  plain.set_prompt("Once upon a time");
  plain.mutable_sampling()->set_temperature(0);
  plain.mutable_sampling()->set_max_tokens(8);
  plain.mutable_sampling()->set_ignore_eos(true);
  StreamResult grpc_text = RunStream(stub.get(), plain);
  ASSERT_TRUE(grpc_text.status.ok()) << grpc_text.status.error_message();
  json c = PostJson(http, "/v1/completions",
                    {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0},
                     {"ignore_eos", true}, {"logprobs", 2}});
  ASSERT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], grpc_text.text);
  EXPECT_EQ(c["choices"][0]["logprobs"]["tokens"].size(), 8u);
  EXPECT_EQ(c["choices"][0]["logprobs"]["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(c["usage"]["completion_tokens"], 8);
  // Streamed, the pieces make the same text.
  auto streamed = http.Post("/v1/completions",
                            json({{"prompt", "Once upon a time"}, {"max_tokens", 8},
                                  {"temperature", 0}, {"ignore_eos", true}, {"stream", true}})
                                .dump(),
                            "application/json");
  ASSERT_TRUE(streamed);
  std::string joined;
  for (absl::string_view line : absl::StrSplit(streamed->body, '\n')) {
    if (!absl::ConsumePrefix(&line, "data: ") || line == "[DONE]") continue;
    json event = json::parse(line);
    if (!event["choices"].empty()) joined += event["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(joined, grpc_text.text);
  EXPECT_TRUE(absl::StrContains(streamed->body, "data: [DONE]"));
  // Token ids and a batch of prompts.
  json batch = PostJson(http, "/v1/completions",
                        {{"prompt", json::array({json::array({1004, 1005, 40, 41}), "Hello"})},
                         {"max_tokens", 3}, {"temperature", 0}, {"n", 2}});
  ASSERT_EQ(batch["choices"].size(), 4u);
  EXPECT_EQ(batch["choices"][0]["text"], batch["choices"][1]["text"]);  // greedy: n equal

  // n = 3: the choices share the prompt's KV blocks (prefix-cache hits on the worker).
  const std::string long_question(400, 'a');
  auto before = stack.ScrapeMetrics(Stack::kWorker);
  ASSERT_TRUE(before.ok());
  const double hits_before =
      MetricValue(*before, "glm4v_worker_prefix_cache_hit_tokens_total", {});
  json n3 = PostJson(http, "/v1/chat/completions",
                     {{"messages", {{{"role", "user"}, {"content", long_question}}}},
                      {"n", 3}, {"max_tokens", 6}, {"temperature", 1.0}, {"seed", 11},
                      {"ignore_eos", true}});
  ASSERT_EQ(n3["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(n3["choices"][i]["index"], i);
  EXPECT_EQ(n3["usage"]["completion_tokens"], 18);
  const int prompt_tokens = n3["usage"]["prompt_tokens"].get<int>();
  auto after = stack.ScrapeMetrics(Stack::kWorker);
  ASSERT_TRUE(after.ok());
  const double hits = MetricValue(*after, "glm4v_worker_prefix_cache_hit_tokens_total", {}) -
                      hits_before;
  EXPECT_GE(hits, 2 * (prompt_tokens - 32)) << "choices 1 and 2 reuse choice 0's prompt blocks";
  // Seeded: the same request gives the same choices.
  json again = PostJson(http, "/v1/chat/completions",
                        {{"messages", {{{"role", "user"}, {"content", long_question}}}},
                         {"n", 3}, {"max_tokens", 6}, {"temperature", 1.0}, {"seed", 11},
                         {"ignore_eos", true}});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(again["choices"][i]["message"]["content"], n3["choices"][i]["message"]["content"]);
  }

  // logit_bias -100 bans the greedy first token; penalties are accepted and validated.
  v1::GenerateRequest greedy = ChatRequest("Describe the weather.", "", 6);
  greedy.mutable_sampling()->set_temperature(0);
  StreamResult base = RunStream(stub.get(), greedy);
  ASSERT_TRUE(base.status.ok());
  ASSERT_FALSE(base.token_ids.empty());
  (*greedy.mutable_sampling()->mutable_logit_bias())[base.token_ids[0]] = -100;
  StreamResult banned = RunStream(stub.get(), greedy);
  ASSERT_TRUE(banned.status.ok()) << banned.status.error_message();
  EXPECT_EQ(std::count(banned.token_ids.begin(), banned.token_ids.end(), base.token_ids[0]), 0);
  json body = ChatBody("Describe the weather.");
  body["presence_penalty"] = 1.0;
  body["frequency_penalty"] = 0.5;
  body["logit_bias"] = {{std::to_string(base.token_ids[0]), -100}};
  PostJson(http, "/v1/chat/completions", body);
  body["frequency_penalty"] = 3;
  auto bad = http.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "frequency_penalty");
  // The gRPC API validates the proto fields the same way.
  greedy.mutable_sampling()->set_presence_penalty(5);
  EXPECT_EQ(RunStream(stub.get(), greedy).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // An http image URL: fetched by the gateway, the same answer as the image inline.
  ImageServer images(Image0Png());
  auto image_body = [](const std::string& url) {
    return json{{"messages",
                 {{{"role", "user"},
                   {"content",
                    {{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                     {{"type", "text"}, {"text", "What is in the image?"}}}}}}},
                {"max_tokens", 4},
                {"temperature", 0}};
  };
  json by_url = PostJson(http, "/v1/chat/completions",
                         image_body(absl::StrCat("http://127.0.0.1:", images.port(), "/cat.png")));
  json inline_image = PostJson(
      http, "/v1/chat/completions",
      image_body("data:image/png;base64," + absl::Base64Escape(Image0Png())));
  EXPECT_EQ(by_url["choices"][0]["message"]["content"],
            inline_image["choices"][0]["message"]["content"]);
  auto missing = http.Post(
      "/v1/chat/completions",
      image_body(absl::StrCat("http://127.0.0.1:", images.port(), "/dog.png")).dump(),
      "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400) << missing->body;
  EXPECT_TRUE(absl::StrContains(missing->body, "HTTP 404")) << missing->body;
  // More image URLs than the per-request limit (1 here): refused before any is fetched.
  const int fetched = images.hits();
  json many = image_body(absl::StrCat("http://127.0.0.1:", images.port(), "/cat.png"));
  for (int i = 0; i < 40; ++i) many["messages"][0]["content"].push_back(many["messages"][0]["content"][0]);
  auto too_many = http.Post("/v1/chat/completions", many.dump(), "application/json");
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 400) << too_many->body;
  EXPECT_EQ(json::parse(too_many->body)["error"]["param"], "messages");
  EXPECT_EQ(images.hits(), fetched);

  // Tools: GLM-4V-9B was not trained for function calling.
  json tools = ChatBody("Weather in Paris?");
  tools["tools"] = {{{"type", "function"},
                     {"function", {{"name", "get_weather"}, {"parameters", json::object()}}}}};
  auto refused = http.Post("/v1/chat/completions", tools.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(json::parse(refused->body)["error"]["param"], "tools");
}

TEST_F(PublicEdgeTest, ToolsOnATextOnlyChatModel) {
  StackOptions options;
  options.model_dir = "tests/data/long-glm4/model";
  options.vision = false;
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  httplib::Client http("127.0.0.1", stack.http_port());
  http.set_read_timeout(60, 0);
  json body = ChatBody("Weather in Paris?");
  body["tools"] = {{{"type", "function"},
                    {"function",
                     {{"name", "get_weather"},
                      {"description", "Current weather of a city"},
                      {"parameters",
                       {{"type", "object"},
                        {"properties", {{"city", {{"type", "string"}}}}}}}}}}};
  json answer = PostJson(http, "/v1/chat/completions", body);
  ASSERT_TRUE(answer.is_object());
  // The tools went into the prompt as GLM-4's system message: it is far longer than the question.
  json plain = PostJson(http, "/v1/chat/completions", ChatBody("Weather in Paris?"));
  EXPECT_GT(answer["usage"]["prompt_tokens"].get<int>(),
            plain["usage"]["prompt_tokens"].get<int>() + 50);
  const std::string reason = answer["choices"][0]["finish_reason"];
  EXPECT_TRUE(reason == "stop" || reason == "length" || reason == "tool_calls") << reason;
  // A past call and its result travel back as GLM-4's assistant + observation turns.
  body["messages"].push_back(
      {{"role", "assistant"},
       {"content", nullptr},
       {"tool_calls",
        {{{"id", "call_0"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_0"}, {"content", "21 C"}});
  json followup = PostJson(http, "/v1/chat/completions", body);
  EXPECT_GT(followup["usage"]["prompt_tokens"].get<int>(),
            answer["usage"]["prompt_tokens"].get<int>());
  // A named function: the assistant turn starts with its name, so the answer is its call.
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  json forced = PostJson(http, "/v1/chat/completions", body);
  ASSERT_TRUE(forced.is_object());
  EXPECT_EQ(forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_TRUE(forced["choices"][0]["message"]["content"].is_null());
  EXPECT_GT(forced["usage"]["prompt_tokens"].get<int>(),
            followup["usage"]["prompt_tokens"].get<int>());  // + the name
  // "required" among two tools cannot be honoured: 400.
  json time_tool = body["tools"][0];
  time_tool["function"]["name"] = "get_time";
  body["tools"].push_back(time_tool);
  body["tool_choice"] = "required";
  auto refused = http.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
}

}  // namespace
}  // namespace glm4v::testing
