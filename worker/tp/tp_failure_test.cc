// A follower rank that dies (SIGKILL) or stalls (SIGSTOP) mid-run: rank 0's next step returns
// UNAVAILABLE within the communicator timeout instead of hanging, later steps fail at once, and
// an engine on the group fails the request with UNAVAILABLE and reports unhealthy. The
// follower is a real process (worker_server --tp_rank=1) so it can be killed.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "worker/comm/test_util.h"
#include "worker/engine.h"
#include "worker/tp/tp_group.h"

extern char** environ;

namespace glm4v::worker::tp {
namespace {

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";
constexpr absl::Duration kTimeout = absl::Seconds(2);

class TpFailureTest : public ::testing::Test {
 protected:
  // Starts rank 1 as a process and rank 0 here.
  void SetUp() override {
    auto group = comm::testing::BindLoopbackGroup(2);
    ASSERT_TRUE(group.ok()) << group.status();
    std::vector<std::string> args = {
        "worker/server/worker_server",
        absl::StrCat("--model_dir=", kModelDir),
        absl::StrCat("--tp_rendezvous=", group->options.rendezvous),
        "--tp_rank=1",
        "--tp_size=2",
        absl::StrCat("--tp_timeout_ms=", absl::ToInt64Milliseconds(kTimeout)),
        "--tp_connect_timeout_ms=20000",
        "--grpc_port=0",
        "--metrics_port=-1",
    };
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&child_, argv[0], nullptr, nullptr, argv.data(), environ), 0);

    TensorParallelOptions options;
    options.model_dir = kModelDir;
    options.tp_size = 2;
    options.rendezvous = group->options.rendezvous;
    options.timeout = kTimeout;
    options.connect_timeout = absl::Seconds(20);
    options.heartbeat_interval = absl::Milliseconds(200);
    options.listener = std::make_shared<comm::SocketListener>(std::move(group->listener));
    auto runner = StartTensorParallelGroup(options);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = *std::move(runner);
  }
  void TearDown() override {
    runner_.reset();
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
  }

  static DecoderBatch OneToken(int32_t token, int32_t position) {
    SequenceChunk c;
    c.token_ids = {token};
    c.positions = {position};
    c.num_cached = position;
    c.block_table = {0, 1};
    DecoderBatch batch;
    batch.sequences.push_back(c);
    return batch;
  }

  pid_t child_ = -1;
  std::unique_ptr<TensorParallelModelRunner> runner_;
};

TEST_F(TpFailureTest, KilledFollowerFailsNextStepWithUnavailable) {
  KvCacheShape shape = runner_->KvBlockShape(4);
  shape.num_blocks = 8;
  ASSERT_TRUE(runner_->AllocateKvCache(shape).ok());
  auto first = runner_->Execute(OneToken(5, 0));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->logits.dim(1), runner_->config().padded_vocab_size);

  ASSERT_EQ(kill(child_, SIGKILL), 0);
  ASSERT_EQ(waitpid(child_, nullptr, 0), child_);
  child_ = -1;
  const absl::Time start = absl::Now();
  auto second = runner_->Execute(OneToken(6, 1));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_LT(took, kTimeout + absl::Seconds(1));
  // Broken for good, and at once.
  const absl::Time again = absl::Now();
  EXPECT_EQ(runner_->Execute(OneToken(6, 1)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - again, absl::Milliseconds(100));
  EXPECT_FALSE(runner_->health().ok());
}

TEST_F(TpFailureTest, StalledFollowerTimesOutWithUnavailable) {
  KvCacheShape shape = runner_->KvBlockShape(4);
  shape.num_blocks = 8;
  ASSERT_TRUE(runner_->AllocateKvCache(shape).ok());
  ASSERT_TRUE(runner_->Execute(OneToken(5, 0)).ok());
  ASSERT_EQ(kill(child_, SIGSTOP), 0);
  const absl::Time start = absl::Now();
  auto second = runner_->Execute(OneToken(6, 1));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_LT(took, 2 * kTimeout + absl::Seconds(1));
}

TEST_F(TpFailureTest, EngineFailsRequestsAndReportsUnhealthy) {
  EngineConfig config;
  config.num_kv_blocks = 32;
  config.block_size = 4;
  auto engine = Engine::Create(config, std::move(runner_));
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto submit = [&](const std::string& id, int max_tokens) {
    EngineRequest request;
    request.request_id = id;
    request.prompt_token_ids = {7, 8, 9, 10};
    request.sampling.temperature = 0;
    request.sampling.max_tokens = max_tokens;
    return (*engine)->Submit(std::move(request)).value();
  };
  auto ok_stream = submit("before", 2);
  absl::Status done;
  while (true) {
    absl::StatusOr<TokenEvent> e = ok_stream->Next(absl::Seconds(10));
    ASSERT_TRUE(e.ok()) << e.status();
    if (e->finish_reason != FinishReason::kNone) break;
  }
  ASSERT_EQ(kill(child_, SIGKILL), 0);
  waitpid(child_, nullptr, 0);
  child_ = -1;
  auto stream = submit("after", 50);
  const absl::Time start = absl::Now();
  absl::Status failure;
  while (true) {
    absl::StatusOr<TokenEvent> e = stream->Next(absl::Seconds(10));
    if (!e.ok()) {
      failure = e.status();
      break;
    }
    ASSERT_EQ(e->finish_reason, FinishReason::kNone) << "request finished despite a dead rank";
  }
  EXPECT_EQ(failure.code(), absl::StatusCode::kUnavailable) << failure;
  EXPECT_LT(absl::Now() - start, kTimeout + absl::Seconds(1));
  EXPECT_FALSE((*engine)->Stats().healthy);
}

}  // namespace
}  // namespace glm4v::worker::tp
