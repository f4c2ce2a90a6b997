// SIGTERM to the gateway while streams are open: they finish completely, new requests are
// refused, and the process exits cleanly within its grace period.
#include <atomic>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

constexpr int kStreams = 6;
constexpr int kOutputLen = 1500;  // long enough to still be decoding at SIGTERM

TEST(DrainTest, SigtermDrainsInFlightStreams) {
  StackOptions options;
  options.drain_grace_seconds = 30;
  auto stack = Stack::Start(options);
  ASSERT_TRUE(stack.ok()) << stack.status();
  Stack& s = **stack;
  auto stub = glm4v::v1::Glm4vService::NewStub(
      grpc::CreateChannel(s.gateway_address(), grpc::InsecureChannelCredentials()));

  absl::Mutex mu;
  int started = 0;
  std::vector<grpc::Status> statuses(kStreams);
  std::vector<int> tokens(kStreams, 0);
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      glm4v::v1::GenerateRequest req;
      for (uint32_t id : {11u, 22u, 33u, 44u, static_cast<uint32_t>(100 + i)}) {
        req.add_prompt_token_ids(id);
      }
      req.mutable_sampling()->set_max_tokens(kOutputLen);
      req.mutable_sampling()->set_ignore_eos(true);
      req.mutable_sampling()->set_temperature(0);
      grpc::ClientContext ctx;
      auto reader = stub->GenerateStream(&ctx, req);
      glm4v::v1::GenerateStreamResponse msg;
      bool counted = false;
      while (reader->Read(&msg)) {
        tokens[i] += msg.token_ids_size();
        if (!counted && msg.token_ids_size() > 0) {
          counted = true;
          absl::MutexLock lock(&mu);
          ++started;
        }
      }
      statuses[i] = reader->Finish();
      ++finished;
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto all_started = [&] { return started == kStreams; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_started), absl::Seconds(30)));
  }
  s.process(Stack::kGateway)->Signal(SIGTERM);
  const int in_flight_at_sigterm = kStreams - finished.load();

  // A request after SIGTERM is refused (or cannot connect): never accepted and then dropped.
  absl::SleepFor(absl::Milliseconds(100));
  {
    glm4v::v1::GenerateRequest req;
    req.add_prompt_token_ids(5);
    req.mutable_sampling()->set_max_tokens(2);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    glm4v::v1::GenerateResponse resp;
    grpc::Status st = stub->Generate(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  }

  for (auto& t : threads) t.join();
  // Otherwise this test would not have exercised draining at all.
  EXPECT_GT(in_flight_at_sigterm, 0);
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(tokens[i], kOutputLen) << i;
  }
  ASSERT_TRUE(s.process(Stack::kGateway)->WaitFor(absl::Seconds(35)))
      << "gateway did not exit after draining";
  EXPECT_TRUE(s.process(Stack::kGateway)->succeeded())
      << s.process(Stack::kGateway)->DescribeExit() << "\n" << s.LogTail(Stack::kGateway);
}

}  // namespace
}  // namespace glm4v::testing
