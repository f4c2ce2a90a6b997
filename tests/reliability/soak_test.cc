// Soak: a couple of thousand short requests must leave no trace: resident memory of each
// service stays flat after warm-up and the worker's KV cache is empty again.
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "common/model_config.h"
#include "common/process_memory.h"
#include "tests/stack/service_stack.h"
#include "tools/loadgen/load_runner.h"
#include "tools/loadgen/report.h"

namespace glm4v::testing {
namespace {

TEST(SoakTest, NoRssGrowthNoKvLeak) {
  StackOptions options;
  // Prefix caching would legitimately keep blocks; with it off, "used" must drop to 0.
  options.worker_flags = {"--enable_prefix_caching=false"};
  auto stack = Stack::Start(options);
  ASSERT_TRUE(stack.ok()) << stack.status();
  Stack& s = **stack;
  auto channel = grpc::CreateChannel(s.gateway_address(), grpc::InsecureChannelCredentials());

  std::string image;
  {
    std::ifstream f("tests/data/tiny-glm4v/image1.png", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    image = ss.str();
  }
  loadgen::PromptOptions p;
  p.input_len = 8;
  p.range_ratio = 0.5;
  p.output_len = 4;
  loadgen::ApplyModelConfig(*LoadModelConfig("tests/data/tiny-glm4v/model"), &p);
  p.image_fraction = 0.1;  // the vision path too (cache hits after the first)
  p.image_bytes = image;
  p.image_mime = "image/png";
  auto prompts = loadgen::PromptFactory::Create(p, 7);
  ASSERT_TRUE(prompts.ok());
  loadgen::RunOptions run;
  run.max_concurrency = 8;

  run.num_requests = 300;  // warm-up: allocator pools, thread pools, caches reach steady state
  loadgen::RunResult warm = loadgen::RunLoad(channel, *prompts, run);
  ASSERT_EQ(loadgen::BuildReport(warm.records, warm.duration_s, {}).succeeded, 300);
  long rss_before[3];
  for (int i = 0; i < 3; ++i) {
    auto rss = ReadResidentKiB(s.pid(static_cast<Stack::Service>(i)));
    ASSERT_TRUE(rss.ok()) << rss.status();
    rss_before[i] = *rss;
  }

  run.num_requests = 2000;
  loadgen::RunResult soak = loadgen::RunLoad(channel, *prompts, run);
  loadgen::LoadReport report = loadgen::BuildReport(soak.records, soak.duration_s, {});
  EXPECT_EQ(report.succeeded, 2000) << loadgen::FormatReport(report);

  const char* names[] = {"vision", "worker", "gateway"};
  for (int i = 0; i < 3; ++i) {
    auto rss = ReadResidentKiB(s.pid(static_cast<Stack::Service>(i)));
    ASSERT_TRUE(rss.ok());
    // 2000 requests of leak at even 8 KiB each would be ~16 MiB; allow allocator noise only.
    const long allowed = rss_before[i] / 20 + 8 * 1024;
    EXPECT_LT(*rss - rss_before[i], allowed)
        << names[i] << " RSS grew from " << rss_before[i] << " KiB to " << *rss << " KiB";
  }

  glm4v::internal::WorkerStats stats;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    auto st = s.WorkerStats();
    ASSERT_TRUE(st.ok()) << st.status();
    stats = *st;
    if (stats.kv_blocks_used() == 0 && stats.running() == 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  EXPECT_EQ(stats.running(), 0u);
  EXPECT_EQ(stats.waiting(), 0u);
  EXPECT_EQ(stats.kv_blocks_used(), 0u) << "KV blocks leaked (of " << stats.kv_blocks_total() << ")";
  EXPECT_GT(stats.kv_blocks_total(), 0u);
}

}  // namespace
}  // namespace glm4v::testing
