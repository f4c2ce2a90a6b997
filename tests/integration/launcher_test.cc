// The launcher starts the stack, serves requests, stops everything on SIGTERM with exit 0, and
// exits non-zero when one of its children dies; with --tp_size=2 the worker is a group of two
// rank processes that serve together and stop together; a text-only model runs without vision.
#include <signal.h>

#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/common/backend_channel.h"
#include "services/common/child_process.h"
#include "services/common/free_port.h"
#include "services/common/health_probe.h"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

class LauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = tmp != nullptr ? tmp : "/tmp";
    for (int* port : {&gateway_port_, &vision_port_, &worker_port_}) *port = *PickFreePort();
    // Workers take consecutive ports; the second one must be free too (best effort).
  }

  // A port picked free can be taken by a test running beside this one before a child binds it:
  // such a start is tried again on new ports.
  absl::Status Launch(int num_workers, const std::string& log_name, int tp_size = 1,
                      const std::string& model_dir = "tests/data/tiny-glm4v/model") {
    absl::Status st;
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (attempt > 0) {
        for (int* port : {&gateway_port_, &vision_port_, &worker_port_}) *port = *PickFreePort();
      }
      st = LaunchOnce(num_workers, log_name, tp_size, model_dir);
      const std::string log = st.ok() ? "" : Log();
      if (st.ok() || (log.find("cannot listen") == std::string::npos &&
                      log.find("cannot bind") == std::string::npos)) {
        break;
      }
      launcher_.reset();
    }
    return st;
  }

  absl::Status LaunchOnce(int num_workers, const std::string& log_name, int tp_size,
                          const std::string& model_dir) {
    log_path_ = absl::StrCat(dir_, "/", log_name);
    ChildProcess::Options options;
    options.log_path = log_path_;
    auto child = ChildProcess::Start(
        {RunfilePath("tools/launcher/launch"), absl::StrCat("--bin_dir=", RunfilePath("")),
         absl::StrCat("--model_dir=", RunfilePath(model_dir)),
         absl::StrCat("--tokenizer_path=",
                      RunfilePath("tests/data/tiny-glm4v/tokenizer/tokenizer.model")),
         absl::StrCat("--gateway_port=", gateway_port_),
         absl::StrCat("--vision_port=", vision_port_), absl::StrCat("--worker_port=", worker_port_),
         absl::StrCat("--num_workers=", num_workers), "--gateway_metrics_port=-1",
         "--vision_metrics_port=-1", "--worker_metrics_port=-1", "--drain_grace_seconds=3",
         "--startup_timeout_seconds=40", absl::StrCat("--tp_size=", tp_size)},
        options);
    if (!child.ok()) return child.status();
    launcher_ = std::move(*child);
    const absl::Time deadline = absl::Now() + absl::Seconds(45);
    while (absl::Now() < deadline) {
      if (ReadFileOrDie(log_path_).find("READY gateway=") != std::string::npos) {
        return absl::OkStatus();
      }
      if (launcher_->Poll()) return absl::InternalError("launcher exited: " + Log());
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError("no READY line: " + Log());
  }

  std::string Log() { return ReadFileOrDie(log_path_); }

  int ChildPid(const std::string& name) {
    std::smatch match;
    const std::string log = Log();
    if (std::regex_search(log, match, std::regex("process=" + name + " pid=([0-9]+)"))) {
      return std::stoi(match[1]);
    }
    return -1;
  }

  std::string dir_, log_path_;
  int gateway_port_ = 0, vision_port_ = 0, worker_port_ = 0;
  std::unique_ptr<ChildProcess> launcher_;
};

TEST_F(LauncherTest, ServesAndStopsCleanlyOnSigterm) {
  ASSERT_TRUE(Launch(1, "launch_ok.log").ok()) << Log();
  auto stub =
      v1::Glm4vService::NewStub(CreateBackendChannel(absl::StrCat("127.0.0.1:", gateway_port_)));
  StreamResult result = RunStream(stub.get(), ChatRequest("What is this?", Image0Png(), 5));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.token_ids.size(), 5u);

  const int gateway_pid = ChildPid("gateway");
  ASSERT_GT(gateway_pid, 0) << Log();
  launcher_->Signal(SIGTERM);
  ASSERT_TRUE(launcher_->WaitFor(absl::Seconds(30)));
  EXPECT_TRUE(launcher_->succeeded()) << launcher_->DescribeExit() << "\n" << Log();
  EXPECT_NE(kill(gateway_pid, 0), 0) << "gateway outlived the launcher";
}

TEST_F(LauncherTest, ExitsNonZeroWhenAChildDies) {
  ASSERT_TRUE(Launch(1, "launch_die.log").ok()) << Log();
  const int worker_pid = ChildPid("worker0");
  ASSERT_GT(worker_pid, 0) << Log();
  kill(worker_pid, SIGKILL);
  ASSERT_TRUE(launcher_->WaitFor(absl::Seconds(30)));
  EXPECT_FALSE(launcher_->succeeded()) << Log();
  EXPECT_NE(Log().find("worker0 died"), std::string::npos) << Log();
}

TEST_F(LauncherTest, TensorParallelGroupServesAndStopsTogether) {
  ASSERT_TRUE(Launch(1, "launch_tp.log", /*tp_size=*/2).ok()) << Log();
  const int rank0 = ChildPid("worker0");
  const int rank1 = ChildPid("worker0[.]rank1");
  ASSERT_GT(rank0, 0) << Log();
  ASSERT_GT(rank1, 0) << Log();
  auto worker = internal::DecoderWorker::NewStub(
      CreateBackendChannel(absl::StrCat("127.0.0.1:", worker_port_)));
  grpc::ClientContext context;
  internal::WorkerStats stats;
  ASSERT_TRUE(worker->GetStats(&context, internal::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.tensor_parallel_size(), 2u);
  auto stub =
      v1::Glm4vService::NewStub(CreateBackendChannel(absl::StrCat("127.0.0.1:", gateway_port_)));
  StreamResult result = RunStream(stub.get(), ChatRequest("What is this?", Image0Png(), 5));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.token_ids.size(), 5u);

  launcher_->Signal(SIGTERM);
  ASSERT_TRUE(launcher_->WaitFor(absl::Seconds(30)));
  EXPECT_TRUE(launcher_->succeeded()) << launcher_->DescribeExit() << "\n" << Log();
  EXPECT_NE(kill(rank0, 0), 0) << "rank 0 outlived the launcher";
  EXPECT_NE(kill(rank1, 0), 0) << "rank 1 outlived the launcher";
}

// A text-only checkpoint: no vision process; text answers, an image is INVALID_ARGUMENT.
TEST_F(LauncherTest, TextOnlyModelRunsWithoutAVisionService) {
  ASSERT_TRUE(Launch(1, "launch_text.log", 1, "tests/data/long-glm4/model").ok()) << Log();
  EXPECT_EQ(ChildPid("vision"), -1) << Log();
  EXPECT_NE(Log().find("text-only model: no vision service"), std::string::npos) << Log();
  auto stub =
      v1::Glm4vService::NewStub(CreateBackendChannel(absl::StrCat("127.0.0.1:", gateway_port_)));
  StreamResult text = RunStream(stub.get(), ChatRequest("Hello", "", 5));
  ASSERT_TRUE(text.status.ok()) << text.status.error_message();
  EXPECT_EQ(text.token_ids.size(), 5u);
  StreamResult image = RunStream(stub.get(), ChatRequest("What is this?", Image0Png(), 5));
  EXPECT_EQ(image.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  launcher_->Signal(SIGTERM);
  ASSERT_TRUE(launcher_->WaitFor(absl::Seconds(30)));
  EXPECT_TRUE(launcher_->succeeded()) << launcher_->DescribeExit() << "\n" << Log();
}

}  // namespace
}  // namespace glm4v::testing
