// Many short load runs, each on a fresh channel that the test drops as soon as RunLoad returns,
// while busy threads make the gRPC callback threads likely to be preempted mid-callback. RunLoad
// must return only once every call it started has let go of its gRPC objects (reactor and
// ClientContext, which holds a reference to the channel): otherwise the last reference to the
// channel can be dropped on a gRPC callback thread, which destroys the channel there (in gRPC
// 1.51 that thread then joins itself and uses the freed callback queue: `prior > 0` aborts).
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "common/model_config.h"
#include "tests/stack/service_stack.h"
#include "tools/loadgen/load_runner.h"

namespace glm4v::testing {
namespace {

TEST(LoadRunnerStressTest, RunLoadLetsGoOfTheChannelBeforeReturning) {
  auto stack = Stack::Start({});
  ASSERT_TRUE(stack.ok()) << stack.status();
  loadgen::PromptOptions p;
  p.input_len = 8;
  p.output_len = 2;
  loadgen::ApplyModelConfig(*LoadModelConfig("tests/data/tiny-glm4v/model"), &p);
  loadgen::PromptFactory prompts = *loadgen::PromptFactory::Create(p, 7);

  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i) {
    hogs.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  const char* env = std::getenv("STRESS_ITERATIONS");
  const int iterations = env != nullptr ? std::atoi(env) : 200;
  int lingering = 0;
  for (int i = 0; i < iterations; ++i) {
    auto channel =
        grpc::CreateChannel((*stack)->gateway_address(), grpc::InsecureChannelCredentials());
    loadgen::RunOptions run;
    run.num_requests = 4;
    run.max_concurrency = 4;
    run.stream = i % 2 == 0;
    loadgen::RunResult result = loadgen::RunLoad(channel, prompts, run);
    // Nothing of the finished calls may still hold the channel.
    if (channel.use_count() != 1) ++lingering;
    ASSERT_EQ(result.records.size(), 4u);
    for (const auto& r : result.records) EXPECT_TRUE(r.ok()) << r.status;
  }
  stop = true;
  for (auto& t : hogs) t.join();
  EXPECT_EQ(lingering, 0) << "runs after which a call still held the channel";
}

}  // namespace
}  // namespace glm4v::testing
