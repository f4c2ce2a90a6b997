// Overload: a burst far beyond the gateway's admission bound. Excess requests must be refused
// with RESOURCE_EXHAUSTED at once, and the admitted ones must not slow down by much (the queue
// bound is what keeps their latency from collapsing).
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "common/model_config.h"
#include "tests/stack/service_stack.h"
#include "tools/loadgen/load_runner.h"
#include "tools/loadgen/report.h"

namespace glm4v::testing {
namespace {

constexpr int kInflight = 4;
constexpr int kQueue = 4;

loadgen::PromptFactory Prompts() {
  loadgen::PromptOptions p;
  p.input_len = 16;
  p.output_len = 32;
  loadgen::ApplyModelConfig(*LoadModelConfig("tests/data/tiny-glm4v/model"), &p);
  return *loadgen::PromptFactory::Create(p, 1);
}

TEST(OverloadTest, ExcessIsRefusedQuicklyAndAdmittedLatencyHolds) {
  StackOptions options;
  options.gateway_flags = {absl::StrCat("--max_inflight=", kInflight),
                           absl::StrCat("--max_queue=", kQueue)};
  auto stack = Stack::Start(options);
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto channel =
      grpc::CreateChannel((*stack)->gateway_address(), grpc::InsecureChannelCredentials());

  // Baseline: exactly as many requests as can be in flight, one wave after another.
  loadgen::PromptFactory prompts = Prompts();
  loadgen::RunOptions base;
  base.num_requests = 3 * kInflight;
  base.max_concurrency = kInflight;
  loadgen::RunResult baseline = loadgen::RunLoad(channel, prompts, base);
  loadgen::LoadReport base_report = loadgen::BuildReport(baseline.records, baseline.duration_s, {});
  ASSERT_EQ(base_report.succeeded, base.num_requests) << loadgen::FormatReport(base_report);

  // Burst: 15x what the gateway may hold (in flight + queued), all at once.
  const int burst = 15 * (kInflight + kQueue);
  loadgen::RunOptions over;
  over.num_requests = burst;
  over.drain_timeout_s = 50;
  loadgen::RunResult result = loadgen::RunLoad(channel, prompts, over);
  loadgen::LoadReport report = loadgen::BuildReport(result.records, result.duration_s, {});
  SCOPED_TRACE(loadgen::FormatReport(report));

  ASSERT_EQ(static_cast<int>(result.records.size()), burst);
  int refused = 0;
  double slowest_refusal_ms = 0;
  for (const auto& r : result.records) {
    if (r.status == "RESOURCE_EXHAUSTED") {
      ++refused;
      slowest_refusal_ms = std::max(slowest_refusal_ms, r.e2e_ms);
    } else {
      EXPECT_EQ(r.status, "OK");
      if (r.ok()) {
        EXPECT_EQ(r.output_tokens, 32);
      }
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GE(report.succeeded, kInflight + kQueue);  // at least what fits was admitted
  // Refusals are an admission decision, not a timeout.
  EXPECT_LT(slowest_refusal_ms, 1000);
  // Admitted requests waited at most for the queue ahead of them to drain: bounded by a few
  // baseline waves, not by the size of the burst.
  const double waves = 1.0 + static_cast<double>(kQueue) / kInflight;
  EXPECT_LT(report.e2e.p99, (waves + 2) * base_report.e2e.max + 500)
      << "baseline e2e max " << base_report.e2e.max << " ms";
}

}  // namespace
}  // namespace glm4v::testing
