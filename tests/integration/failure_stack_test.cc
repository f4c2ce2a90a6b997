// Failure behaviour of the multi-process stack: backends dying and coming back, client
// cancellation freeing KV blocks, invalid requests, and graceful drain on SIGTERM.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.pb.h"
#include "protos/grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "services/common/backend_channel.h"
#include "services/common/health_probe.h"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

grpc::Status Unary(v1::Glm4vService::Stub* stub, const v1::GenerateRequest& request,
                   v1::GenerateResponse* response = nullptr,
                   absl::Duration timeout = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GenerateResponse ignored;
  return stub->Generate(&context, request, response ? response : &ignored);
}

v1::GenerateRequest TextRequest(uint32_t max_tokens) {
  return ChatRequest("Describe the colors and the shapes.", "", max_tokens);
}

internal::WorkerStats WorkerStats(internal::DecoderWorker::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  internal::WorkerStats stats;
  EXPECT_TRUE(stub->GetStats(&context, internal::StatsRequest(), &stats).ok());
  return stats;
}

TEST(FailureStackTest, VisionDownFailsImagesFastButTextWorksAndImagesRecover) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  const v1::GenerateRequest image_request = ChatRequest("What is this?", Image0Png(), 4);
  ASSERT_TRUE(Unary(stub.get(), image_request).ok());

  stack.Kill(Stack::kVision);
  const absl::Time start = absl::Now();
  grpc::Status status = Unary(stub.get(), image_request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "a dead vision service must fail fast";
  status = Unary(stub.get(), TextRequest(4));
  EXPECT_TRUE(status.ok()) << status.error_message();

  ASSERT_TRUE(stack.Restart(Stack::kVision).ok()) << stack.LogTail(Stack::kVision);
  // The gateway's channel reconnects on its own (backoff capped at 1 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    status = Unary(stub.get(), image_request);
    if (status.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(FailureStackTest, WorkerKilledMidStreamEndsWithUnavailableAndGatewayStaysUp) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto reader = stub->GenerateStream(&context, TextRequest(1500));
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk)) << reader->Finish().error_message();
  stack.Kill(Stack::kWorker);
  while (reader->Read(&chunk)) {
    ASSERT_EQ(chunk.finish_reason(), v1::FINISH_REASON_UNSPECIFIED) << "stream finished first";
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // The gateway is still serving, answers promptly without a worker, and recovers with one.
  auto state = ProbeHealth(CreateBackendChannel(stack.gateway_address()), "glm4v.v1.Glm4vService",
                           absl::Seconds(5));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, ServingState::kServing);
  EXPECT_EQ(Unary(stub.get(), TextRequest(4)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(stack.process(Stack::kGateway)->Poll()) << "gateway exited: " << stack.LogTail(Stack::kGateway);

  ASSERT_TRUE(stack.Restart(Stack::kWorker).ok()) << stack.LogTail(Stack::kWorker);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    status = Unary(stub.get(), TextRequest(4));
    if (status.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(FailureStackTest, ClientCancelFreesTheWorkersKvBlocks) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  auto worker = stack.WorkerStub(0);

  grpc::ClientContext context;
  auto reader = stub->GenerateStream(&context, TextRequest(1500));
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk)) << reader->Finish().error_message();
  internal::WorkerStats busy = WorkerStats(worker.get());
  EXPECT_EQ(busy.running(), 1u);
  EXPECT_GT(busy.kv_blocks_used(), 0u);

  context.TryCancel();
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  internal::WorkerStats idle;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    idle = WorkerStats(worker.get());
    if (idle.running() == 0 && idle.waiting() == 0 && idle.kv_blocks_used() == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(idle.running(), 0u);
  EXPECT_EQ(idle.waiting(), 0u);
  EXPECT_EQ(idle.kv_blocks_used(), 0u) << "cancelled sequence still holds KV blocks";
}

// A non-streaming HTTP completion whose client disconnects is cancelled (the worker frees the
// sequence) instead of decoding until max_tokens. The client here is a raw socket that sends
// the request, waits for the response headers (generation has started) and closes.
TEST(FailureStackTest, HttpClientGoneCancelsANonStreamingCompletion) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  const std::string body =
      R"({"model":"glm-4v-9b","max_tokens":1900,"ignore_eos":true,"temperature":0,)"
      R"("messages":[{"role":"user","content":"Tell a very long story"}]})";
  const std::string request = absl::StrCat(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: ", body.size(), "\r\n\r\n", body);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(stack.http_port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string head;
  char buf[512];
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << "no response headers";
    head.append(buf, n);
  }
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  close(fd);

  std::string metrics;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    auto scraped = stack.ScrapeMetrics(Stack::kWorker);
    ASSERT_TRUE(scraped.ok()) << scraped.status();
    metrics = *scraped;
    if (metrics.find("outcome=\"cancelled\"} 1") != std::string::npos ||
        metrics.find("outcome=\"length\"} 1") != std::string::npos) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(metrics.find("glm4v_worker_requests_total{outcome=\"cancelled\"} 1"), std::string::npos)
      << "the completion was not cancelled when its client left:\n" << metrics;
}

// grpcurl-style discovery: the gateway's public port serves gRPC server reflection, listing its
// services and handing out the descriptor of the public API.
TEST(FailureStackTest, GatewayServesServerReflection) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(
      CreateBackendChannel(stack.gateway_address()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("*");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse listed;
  ASSERT_TRUE(stream->Read(&listed));
  std::vector<std::string> names;
  for (const auto& service : listed.list_services_response().service()) {
    names.push_back(service.name());
  }
  for (const char* want : {"glm4v.v1.Glm4vService", "grpc.health.v1.Health",
                           "grpc.reflection.v1alpha.ServerReflection"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end())
        << want << " not in " << absl::StrJoin(names, ", ");
  }
  grpc::reflection::v1alpha::ServerReflectionRequest file;
  file.set_file_containing_symbol("glm4v.v1.Glm4vService");
  ASSERT_TRUE(stream->Write(file));
  grpc::reflection::v1alpha::ServerReflectionResponse described;
  ASSERT_TRUE(stream->Read(&described));
  ASSERT_GT(described.file_descriptor_response().file_descriptor_proto_size(), 0)
      << described.DebugString();
  google::protobuf::FileDescriptorProto proto;
  ASSERT_TRUE(proto.ParseFromString(described.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(proto.package(), "glm4v.v1");
  bool has_model_info = false;
  for (const auto& service : proto.service()) {
    for (const auto& method : service.method()) has_model_info |= method.name() == "GetModelInfo";
  }
  EXPECT_TRUE(has_model_info);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(FailureStackTest, InvalidRequestsAreInvalidArgumentAndHarmless) {
  StackOptions options;
  options.gateway_flags = {"--max_image_bytes=100000", "--max_prompt_tokens=200"};
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();

  std::vector<std::pair<std::string, v1::GenerateRequest>> bad;
  std::string png = Image0Png();
  bad.emplace_back("not an image", ChatRequest("What?", "definitely not a png", 4));
  std::string truncated = png.substr(0, png.size() / 2);
  bad.emplace_back("truncated png", ChatRequest("What?", truncated, 4));
  std::string corrupt = png;
  for (size_t i = 60; i < corrupt.size(); i += 7) corrupt[i] ^= 0x5a;
  bad.emplace_back("corrupt png", ChatRequest("What?", corrupt, 4));
  bad.emplace_back("oversized image", ChatRequest("What?", std::string(200000, 'x'), 4));
  bad.emplace_back("prompt too long", ChatRequest(std::string(5000, 'z'), "", 4));
  v1::GenerateRequest two_images = ChatRequest("What?", png, 4);
  two_images.mutable_messages(0)->add_content()->mutable_image()->set_data(png);
  bad.emplace_back("too many images", two_images);
  v1::GenerateRequest hot = TextRequest(4);
  hot.mutable_sampling()->set_temperature(-1);
  bad.emplace_back("negative temperature", hot);
  v1::GenerateRequest top_p = TextRequest(4);
  top_p.mutable_sampling()->set_top_p(0);
  bad.emplace_back("top_p 0", top_p);
  v1::GenerateRequest ids;
  ids.add_prompt_token_ids(1004);
  ids.add_prompt_token_ids(99999);
  bad.emplace_back("id outside vocab", ids);

  for (const auto& [what, request] : bad) {
    grpc::Status status = Unary(stub.get(), request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << status.error_message();
    EXPECT_FALSE(status.error_message().empty()) << what;
  }
  // Nothing crashed; good requests still work.
  EXPECT_FALSE(stack.process(Stack::kVision)->Poll());
  EXPECT_FALSE(stack.process(Stack::kWorker)->Poll());
  EXPECT_TRUE(Unary(stub.get(), ChatRequest("What is this?", png, 4)).ok());
}

TEST(FailureStackTest, SigtermDrainsInFlightRequestsThenExits) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();

  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto reader = stub->GenerateStream(&context, TextRequest(100));
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk)) << reader->Finish().error_message();
  int tokens = chunk.token_ids_size();

  stack.process(Stack::kGateway)->Signal(SIGTERM);
  // Health flips to NOT_SERVING while the stream is still running.
  absl::SleepFor(absl::Milliseconds(300));
  auto state = ProbeHealth(CreateBackendChannel(stack.gateway_address()), "glm4v.v1.Glm4vService",
                           absl::Seconds(2));
  if (state.ok()) {
    EXPECT_EQ(*state, ServingState::kNotServing);
  }
  // New requests are refused while draining.
  EXPECT_NE(Unary(stub.get(), TextRequest(2), nullptr, absl::Seconds(5)).error_code(),
            grpc::StatusCode::OK);

  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&chunk)) {
    tokens += chunk.token_ids_size();
    finish = chunk.finish_reason();
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(finish, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 100);
  ASSERT_TRUE(stack.process(Stack::kGateway)->WaitFor(absl::Seconds(15)));
  EXPECT_TRUE(stack.process(Stack::kGateway)->succeeded()) << stack.process(Stack::kGateway)->DescribeExit();

  // The worker drains the same way.
  stack.process(Stack::kWorker)->Signal(SIGTERM);
  ASSERT_TRUE(stack.process(Stack::kWorker)->WaitFor(absl::Seconds(15)));
  EXPECT_TRUE(stack.process(Stack::kWorker)->succeeded()) << stack.process(Stack::kWorker)->DescribeExit();
}

TEST(FailureStackTest, GatewayExportsTheContractMetrics) {
  auto started = Stack::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  ASSERT_TRUE(Unary(stub.get(), TextRequest(3)).ok());
  ASSERT_EQ(Unary(stub.get(), ChatRequest("x", "bad image", 3)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  httplib::Client http("127.0.0.1", stack.metrics_port(Stack::kGateway));
  auto response = http.Get("/metrics");
  ASSERT_TRUE(response);
  const std::string& body = response->body;
  for (const char* name :
       {"glm4v_gateway_requests_total{method=\"Generate\",code=\"OK\"} 1",
        "glm4v_gateway_requests_total{method=\"Generate\",code=\"INVALID_ARGUMENT\"} 1",
        "glm4v_gateway_request_duration_seconds_bucket",
        "glm4v_gateway_time_to_first_token_seconds", "glm4v_gateway_time_per_output_token_seconds",
        "glm4v_gateway_queue_time_seconds", "glm4v_gateway_queue_depth 0",
        "glm4v_gateway_inflight_requests 0", "glm4v_gateway_prompt_tokens_total",
        "glm4v_gateway_completion_tokens_total 3", "glm4v_gateway_backend_up{backend=\"worker\""}) {
    EXPECT_NE(body.find(name), std::string::npos) << name << " missing from\n" << body;
  }
  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
}

// Device flags the worker cannot honour stop it at start-up with the reason, before it loads
// anything (a silent fallback would serve at the wrong precision or speed).
TEST(FailureStackTest, WorkerRefusesBadDeviceFlagsWithTheReason) {
  const struct {
    std::vector<std::string> flags;
    std::string message;
  } cases[] = {
      {{"--kv_cache_dtype=fp16"}, "--kv_cache_dtype=fp16: expected auto, f32 or bf16"},
      {{"--weight_dtype=int3"}, "--weight_dtype=int3: expected auto, f32, bf16, int8, int4 or fp8"},
      {{"--cuda_graphs=sometimes"}, "--cuda_graphs=sometimes: expected auto, on or off"},
      {{"--cuda_graphs=on"}, "--cuda_graphs=on needs --backend=cuda"},
  };
  const char* tmp = std::getenv("TEST_TMPDIR");
  int index = 0;
  for (const auto& c : cases) {
    std::vector<std::string> argv = {RunfilePath("worker/server/worker_server"),
                                     "--model_dir=" + RunfilePath("tests/data/tiny-glm4v/model"),
                                     "--host=127.0.0.1", "--grpc_port=0", "--metrics_port=-1"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    ChildProcess::Options options;
    options.log_path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bad_flags", index++, ".log");
    auto child = ChildProcess::Start(argv, options);
    ASSERT_TRUE(child.ok()) << child.status();
    ASSERT_TRUE((*child)->WaitFor(absl::Seconds(20))) << c.message;
    EXPECT_FALSE((*child)->succeeded()) << c.message;
    const std::string log = ReadFileOrDie(options.log_path);
    EXPECT_NE(log.find(c.message), std::string::npos) << c.message << " not in\n" << log;
  }
}

// The vision server refuses a weight dtype it cannot store, with the reason, before serving.
TEST(FailureStackTest, VisionRefusesABadWeightDtypeWithTheReason) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ChildProcess::Options options;
  options.log_path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/vision_bad_dtype.log");
  auto child = ChildProcess::Start(
      {RunfilePath("services/vision/vision_server"),
       "--model_dir=" + RunfilePath("tests/data/tiny-glm4v/model"), "--host=127.0.0.1",
       "--grpc_port=0", "--metrics_port=-1", "--weight_dtype=int3"},
      options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->WaitFor(absl::Seconds(20)));
  EXPECT_FALSE((*child)->succeeded());
  const std::string log = ReadFileOrDie(options.log_path);
  EXPECT_NE(log.find("--weight_dtype=int3: expected auto, f32, bf16, int8, int4 or fp8"), std::string::npos)
      << log;
}

// A vision timeout that would fail every image request stops the gateway at start-up.
// The flags this round added refuse bad values at startup, naming the flag.
TEST(FailureStackTest, NewFlagsRefuseBadValuesWithTheReason) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string model = "--model_dir=" + RunfilePath("tests/data/tiny-glm4v/model");
  const std::vector<std::string> gateway = {
      RunfilePath("services/gateway/gateway"), model,
      "--tokenizer_path=" + RunfilePath("tests/data/tiny-glm4v/tokenizer/tokenizer.model"),
      "--host=127.0.0.1", "--grpc_port=0", "--metrics_port=-1",
      "--vision_address=127.0.0.1:1", "--worker_addresses=127.0.0.1:2"};
  struct Case {
    std::vector<std::string> argv;
    std::string bad_flag, expected;
  };
  const std::vector<Case> cases = {
      {{RunfilePath("services/vision/vision_server"), model, "--host=127.0.0.1", "--grpc_port=0",
        "--metrics_port=-1"},
       "--feature_cache_dtype=f16", "--feature_cache_dtype=f16: expected f32 or bf16"},
      {{RunfilePath("worker/server/worker_server"), model, "--host=127.0.0.1", "--grpc_port=0",
        "--metrics_port=-1"},
       "--decode_context_parallel=2", "needs --tp_size larger than the model's KV groups"},
      {gateway, "--routing=random", "--routing=random: expected cache_aware or affinity_hash"},
      {gateway, "--worker_discovery=http://workers",
       "expected dns:///NAME:PORT or file:///PATH"},
      {gateway, "--worker_poll_interval_ms=0", "--worker_poll_interval_ms must be positive"},
      {gateway, "--routing_load_token_cost=-1", "--routing_load_token_cost must be >= 0"},
      // The public edge's flags (issue #20).
      {gateway, "--api_keys_file=/nonexistent/api_keys",
       "api keys file /nonexistent/api_keys cannot be read"},
      {gateway, "--api_key_max_concurrent=-1", "--api_key_max_concurrent must be >= 0"},
      {gateway, "--config_poll_interval_ms=0", "--config_poll_interval_ms must be positive"},
      {gateway, "--tls_cert=/nonexistent/cert.pem", "--tls_cert and --tls_key go together"},
      {gateway, "--backend_tls_cert=/nonexistent/client.pem",
       "--backend_tls_cert/--backend_tls_key need --backend_tls_ca"},
      {{RunfilePath("worker/server/worker_server"), model, "--host=127.0.0.1", "--grpc_port=0",
        "--metrics_port=-1"},
       "--tls_ca=/nonexistent/ca.pem", "--tls_ca needs --tls_cert and --tls_key"},
      {{RunfilePath("services/vision/vision_server"), model, "--host=127.0.0.1", "--grpc_port=0",
        "--metrics_port=-1", "--tls_key=/nonexistent/server.key"},
       "--tls_cert=/nonexistent/server.pem", "cannot read certificate file /nonexistent/server.pem"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bad_flag);
    ChildProcess::Options options;
    options.log_path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bad_flag_", n++, ".log");
    std::vector<std::string> argv = c.argv;
    argv.push_back(c.bad_flag);
    auto child = ChildProcess::Start(argv, options);
    ASSERT_TRUE(child.ok()) << child.status();
    ASSERT_TRUE((*child)->WaitFor(absl::Seconds(20)));
    EXPECT_FALSE((*child)->succeeded());
    const std::string log = ReadFileOrDie(options.log_path);
    EXPECT_NE(log.find(c.expected), std::string::npos) << log;
  }
}

TEST(FailureStackTest, GatewayRefusesANonPositiveVisionTimeoutWithTheReason) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  ChildProcess::Options options;
  options.log_path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/gateway_bad_timeout.log");
  auto child = ChildProcess::Start(
      {RunfilePath("services/gateway/gateway"),
       "--model_dir=" + RunfilePath("tests/data/tiny-glm4v/model"),
       "--tokenizer_path=" + RunfilePath("tests/data/tiny-glm4v/tokenizer/tokenizer.model"),
       "--host=127.0.0.1", "--grpc_port=0", "--metrics_port=-1",
       "--vision_address=127.0.0.1:1", "--worker_addresses=127.0.0.1:2",
       "--vision_timeout_seconds=0"},
      options);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->WaitFor(absl::Seconds(20)));
  EXPECT_FALSE((*child)->succeeded());
  const std::string log = ReadFileOrDie(options.log_path);
  EXPECT_NE(log.find("--vision_timeout_seconds must be positive, got 0"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace glm4v::testing
