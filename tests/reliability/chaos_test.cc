// Backend crashes under load: the vision service and then the worker are SIGKILLed and
// restarted while requests stream. No request may vanish: each one ends with a status, nothing
// hangs until the client gives up, and every success is complete. After the restarts the stack
// serves normally again.
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "common/model_config.h"
#include "tests/stack/service_stack.h"
#include "tools/loadgen/load_runner.h"
#include "tools/loadgen/report.h"

namespace glm4v::testing {
namespace {

constexpr int kOutputLen = 24;

loadgen::PromptFactory Prompts(uint64_t seed) {
  std::ifstream f("tests/data/tiny-glm4v/image2.png", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  loadgen::PromptOptions p;
  p.input_len = 12;
  p.output_len = kOutputLen;
  loadgen::ApplyModelConfig(*LoadModelConfig("tests/data/tiny-glm4v/model"), &p);
  p.image_fraction = 0.5;
  p.image_bytes = ss.str();
  p.image_mime = "image/png";
  return *loadgen::PromptFactory::Create(p, seed);
}

void ExpectNoneLost(const loadgen::RunResult& result, int sent) {
  ASSERT_EQ(static_cast<int>(result.records.size()), sent);
  for (const auto& r : result.records) {
    // CANCELLED here would mean the client had to give up on a hung request.
    EXPECT_NE(r.status, "CANCELLED");
    EXPECT_NE(r.status, "DEADLINE_EXCEEDED");
    if (r.ok()) {
      EXPECT_EQ(r.output_tokens, kOutputLen) << "a success with a truncated answer";
    }
  }
}

TEST(ChaosTest, KilledBackendsLoseNoRequestSilently) {
  auto stack = Stack::Start({});
  ASSERT_TRUE(stack.ok()) << stack.status();
  Stack& s = **stack;
  auto channel = grpc::CreateChannel(s.gateway_address(), grpc::InsecureChannelCredentials());

  for (Stack::Service victim : {Stack::kVision, Stack::kWorker}) {
    SCOPED_TRACE(victim == Stack::kVision ? "vision killed" : "worker killed");
    loadgen::PromptFactory prompts = Prompts(victim);
    loadgen::RunOptions run;
    run.duration_s = 6;
    run.request_rate = 40;
    run.max_concurrency = 8;
    run.drain_timeout_s = 30;
    loadgen::RunResult result;
    std::thread load([&] { result = loadgen::RunLoad(channel, prompts, run); });
    absl::SleepFor(absl::Seconds(1.5));
    absl::Status restarted = s.Restart(victim);
    load.join();
    ASSERT_TRUE(restarted.ok()) << restarted;
    loadgen::LoadReport report = loadgen::BuildReport(result.records, result.duration_s, {});
    SCOPED_TRACE(loadgen::FormatReport(report));
    ExpectNoneLost(result, report.requests);
    EXPECT_GT(report.succeeded, 0);

    // Recovered: the gateway reconnects to the restarted backend and everything succeeds.
    ASSERT_TRUE(s.WaitServing(Stack::kGateway, absl::Seconds(20)).ok());
    loadgen::RunOptions after;
    after.num_requests = 20;
    after.max_concurrency = 4;
    loadgen::RunResult healthy;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    // The gateway may need a moment to see the backend healthy again.
    do {
      healthy = loadgen::RunLoad(channel, prompts, after);
    } while (loadgen::BuildReport(healthy.records, 1, {}).succeeded < 20 && absl::Now() < deadline);
    EXPECT_EQ(loadgen::BuildReport(healthy.records, 1, {}).succeeded, 20);
  }
}

}  // namespace
}  // namespace glm4v::testing
