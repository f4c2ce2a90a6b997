// Routing through the real stack: cache-aware routing sends follow-up questions about the same
// image to the worker that holds its KV blocks (prefix-cache hits reported in usage), and
// worker discovery from a watched file adds workers, drains removed ones without failing the
// requests they serve, and takes them back.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

uint64_t Completed(Stack& stack, int worker) {
  auto stats = stack.WorkerStats(worker);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats.ok() ? stats->completed_requests() : 0;
}

// A conversation about one image: a shared system prompt, then the turns so far.
v1::GenerateRequest Turn(const std::string& image, int turns) {
  v1::GenerateRequest request;
  v1::ChatMessage* system = request.add_messages();
  system->set_role(v1::ROLE_SYSTEM);
  system->add_content()->set_text("You are a careful assistant. Answer in one short sentence.");
  for (int t = 0; t <= turns; ++t) {
    v1::ChatMessage* user = request.add_messages();
    user->set_role(v1::ROLE_USER);
    if (t == 0) user->add_content()->mutable_image()->set_data(image);
    user->add_content()->set_text(absl::StrCat("Question number ", t, " about this picture?"));
    if (t < turns) {
      v1::ChatMessage* answer = request.add_messages();
      answer->set_role(v1::ROLE_ASSISTANT);
      answer->add_content()->set_text(absl::StrCat("Answer number ", t, "."));
    }
  }
  request.mutable_sampling()->set_max_tokens(4);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

TEST(RoutingStackTest, FollowUpsFindTheWorkerHoldingTheImage) {
  StackOptions options;
  options.num_workers = 3;
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();
  const std::string image = Image0Png();
  std::vector<uint64_t> before;
  for (int w = 0; w < 3; ++w) before.push_back(Completed(stack, w));
  constexpr int kTurns = 5;
  for (int t = 0; t < kTurns; ++t) {
    // The gateway learns a worker's load from its stats every 250 ms: let the previous turn's
    // finished sequence leave that report, as it would between a user's questions.
    absl::SleepFor(absl::Milliseconds(300));
    StreamResult r = RunStream(stub.get(), Turn(image, t));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    if (t > 0) {
      // Everything up to the previous turn is in that worker's prefix cache (whole blocks).
      EXPECT_GE(r.last.usage().cached_prompt_tokens(), r.last.usage().image_tokens())
          << "turn " << t;
    }
  }
  absl::SleepFor(absl::Milliseconds(600));  // stats are published per step
  int served_all = 0;
  for (int w = 0; w < 3; ++w) {
    if (Completed(stack, w) - before[w] == kTurns) ++served_all;
  }
  EXPECT_EQ(served_all, 1) << "the turns of one conversation were spread over workers";
}

TEST(RoutingStackTest, DiscoveredWorkersJoinAndLeaveWithoutFailingRequests) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string list = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/workers.txt");
  StackOptions options;
  options.num_workers = 2;
  // The stack's ports are chosen at start: the list is written once they are known (below);
  // until then it is empty and the gateway keeps its initial members (the static list).
  std::ofstream(list) << "";
  options.gateway_flags = {"--worker_discovery=file://" + list, "--worker_poll_interval_ms=50"};
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto write = [&](const std::vector<int>& workers) {
    std::ofstream out(list + ".new");
    out << "# written by the test\n";
    for (int w : workers) out << stack.worker_address(w) << "\n";
    out.close();
    std::rename((list + ".new").c_str(), list.c_str());
  };
  auto stub = stack.GatewayStub();
  auto served_by = [&](int requests) {
    std::vector<uint64_t> before = {Completed(stack, 0), Completed(stack, 1)};
    for (int i = 0; i < requests; ++i) {
      StreamResult r = RunStream(stub.get(), ChatRequest(absl::StrCat("Hello ", i), "", 4));
      EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    }
    absl::SleepFor(absl::Milliseconds(600));
    return std::vector<uint64_t>{Completed(stack, 0) - before[0], Completed(stack, 1) - before[1]};
  };

  // Only worker 1 listed: discovery drains what it omits.
  write({1});
  absl::SleepFor(absl::Seconds(1));
  std::vector<uint64_t> counts = served_by(6);
  EXPECT_EQ(counts[0], 0u);
  EXPECT_EQ(counts[1], 6u);

  // Worker 0 joins; a long request on worker 1 survives worker 1 leaving the list.
  write({0, 1});
  absl::SleepFor(absl::Seconds(1));
  StreamResult long_result;
  std::atomic<bool> long_done{false};
  const std::vector<uint64_t> before_long = {Completed(stack, 0), Completed(stack, 1)};
  std::thread long_request([&]() {
    auto own = stack.GatewayStub();
    long_result = RunStream(own.get(), ChatRequest("Tell a long story", "", 2000),
                            absl::Seconds(60));
    long_done = true;
  });
  // Drain whichever worker took it, as soon as it runs there.
  auto running = [&](int w) {
    auto stats = stack.WorkerStats(w);
    return stats.ok() && stats->running() > 0;
  };
  int busy = -1;
  for (int i = 0; i < 500 && busy < 0; ++i) {
    if (running(0)) busy = 0;
    else if (running(1)) busy = 1;
    else absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(busy, 0) << "the long request is not running anywhere";
  write({1 - busy});
  bool drained_while_running = false;
  for (int i = 0; i < 400; ++i) {
    if (ReadFileOrDie(stack.log_path(Stack::kGateway)).find("worker left discovery") !=
        std::string::npos) {
      drained_while_running = !long_done;
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(drained_while_running) << "inconclusive: the request ended before the drain";
  long_request.join();
  EXPECT_TRUE(long_result.status.ok()) << long_result.status.error_message();
  EXPECT_EQ(long_result.token_ids.size(), 2000u);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Completed(stack, busy) - before_long[busy], 1u);
  counts = served_by(6);
  EXPECT_EQ(counts[1 - busy], 6u);
  EXPECT_EQ(counts[busy], 0u);
  auto metrics = stack.ScrapeMetrics(Stack::kGateway);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->find(stack.worker_address(busy)), std::string::npos)
      << "a removed worker keeps its backend_up series";
  // And back: it is a member again and takes a share of concurrent requests.
  write({0, 1});
  absl::SleepFor(absl::Seconds(1));
  metrics = stack.ScrapeMetrics(Stack::kGateway);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->find(stack.worker_address(busy)), std::string::npos);
  const uint64_t rejoined_before = Completed(stack, busy);
  std::vector<std::thread> burst;
  for (int i = 0; i < 8; ++i) {
    burst.emplace_back([&stack, i]() {
      auto own = stack.GatewayStub();
      StreamResult r = RunStream(own.get(), ChatRequest(absl::StrCat("Burst ", i), "", 64));
      EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    });
  }
  for (auto& t : burst) t.join();
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_GT(Completed(stack, busy) - rejoined_before, 0u);
}


}  // namespace
}  // namespace glm4v::testing
