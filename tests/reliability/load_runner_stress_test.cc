// Many short load runs, each on a fresh channel that is dropped as soon as RunLoad returns: the
// teardown a test (or the loadgen binary) does right after its last run. RunLoad must not return
// while a call it started still holds gRPC objects (reactor, ClientContext, and through it the
// channel), or that teardown races with the callback threads still finishing those calls.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "common/model_config.h"
#include "tests/reliability/stack.h"
#include "tools/loadgen/load_runner.h"

namespace glm4v::testing {
namespace {

loadgen::PromptFactory Prompts() {
  loadgen::PromptOptions p;
  p.input_len = 8;
  p.output_len = 2;
  loadgen::ApplyModelConfig(*LoadModelConfig("tests/data/tiny-glm4v/model"), &p);
  return *loadgen::PromptFactory::Create(p, 7);
}

TEST(LoadRunnerStressTest, ShortRunsOnFreshChannels) {
  auto stack = Stack::Start({});
  ASSERT_TRUE(stack.ok()) << stack.status();
  loadgen::PromptFactory prompts = Prompts();
  const char* env = std::getenv("STRESS_ITERATIONS");
  const int iterations = env != nullptr ? std::atoi(env) : 100;
  for (int i = 0; i < iterations; ++i) {
    auto channel =
        grpc::CreateChannel((*stack)->gateway_address(), grpc::InsecureChannelCredentials());
    loadgen::RunOptions run;
    run.num_requests = 4;
    run.max_concurrency = 4;
    loadgen::RunResult result = loadgen::RunLoad(channel, prompts, run);
    ASSERT_EQ(result.records.size(), 4u);
    for (const auto& r : result.records) EXPECT_TRUE(r.ok()) << r.status;
  }
}

}  // namespace
}  // namespace glm4v::testing
