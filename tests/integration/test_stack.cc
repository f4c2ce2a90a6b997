#include "tests/integration/test_stack.h"

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/backend_channel.h"
#include "services/common/free_port.h"
#include "services/common/health_probe.h"

namespace glm4v::testing {
namespace {

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";
constexpr char kTokenizer[] = "tests/data/tiny-glm4v/tokenizer/tokenizer.model";
constexpr absl::Duration kStartTimeout = absl::Seconds(30);

int FreePortOrDie() {
  absl::StatusOr<int> port = PickFreePort();
  if (!port.ok()) std::abort();
  return *port;
}

std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

}  // namespace

std::string RunfilePath(const std::string& workspace_relative) {
  // Bazel runs tests from <runfiles>/<workspace name>.
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    return absl::StrCat(srcdir, "/", workspace, "/", workspace_relative);
  }
  return workspace_relative;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TestStack::TestStack(StackOptions options) : options_(std::move(options)) {
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const char* tmp = std::getenv("TEST_TMPDIR");
  log_dir_ = outputs != nullptr ? outputs : (tmp != nullptr ? tmp : "/tmp");
  vision_port_ = FreePortOrDie();
  for (int i = 0; i < options_.num_workers; ++i) worker_ports_.push_back(FreePortOrDie());
  workers_.resize(options_.num_workers);
  followers_.resize(options_.num_workers);
  gateway_port_ = FreePortOrDie();
  gateway_metrics_port_ = FreePortOrDie();
}

TestStack::~TestStack() {
  // Gateway first so it does not log every backend disappearing.
  gateway_.reset();
  workers_.clear();
  followers_.clear();
  vision_.reset();
}

absl::StatusOr<std::unique_ptr<ChildProcess>> TestStack::Launch(const std::string& name,
                                                                std::vector<std::string> argv) {
  ChildProcess::Options options;
  options.log_path = absl::StrCat(log_dir_, "/", name, ".log");
  return ChildProcess::Start(argv, options);
}

absl::Status TestStack::StartVision() {
  std::vector<std::string> argv = {RunfilePath("services/vision/vision_server"),
                                   absl::StrCat("--model_dir=", RunfilePath(kModelDir)),
                                   "--host=127.0.0.1",
                                   absl::StrCat("--grpc_port=", vision_port_),
                                   "--metrics_port=-1",
                                   "--drain_grace_seconds=5"};
  argv.insert(argv.end(), options_.vision_flags.begin(), options_.vision_flags.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = Launch("vision", argv);
  if (!child.ok()) return child.status();
  vision_ = std::move(*child);
  return WaitUntilServing(vision_address(), "glm4v.internal.VisionEncoder",
                          absl::Now() + kStartTimeout);
}

absl::Status TestStack::StartWorker(int index) {
  // A restarted worker is a whole new group.
  followers_[index].clear();
  const std::string rendezvous = options_.tp_size > 1 ? Loopback(FreePortOrDie()) : "";
  auto argv_for_rank = [&](int rank) {
    std::vector<std::string> argv = {
        RunfilePath("worker/server/worker_server"),
        absl::StrCat("--model_dir=", RunfilePath(kModelDir)),
        "--host=127.0.0.1",
        absl::StrCat("--grpc_port=", rank == 0 ? worker_ports_[index] : 0),
        "--metrics_port=-1",
        "--kv_cache_bytes=33554432",
        "--drain_grace_seconds=5",
        absl::StrCat("--tp_size=", options_.tp_size)};
    if (options_.tp_size > 1) {
      argv.push_back(absl::StrCat("--tp_rank=", rank));
      argv.push_back(absl::StrCat("--tp_rendezvous=", rendezvous));
      argv.push_back("--tp_connect_timeout_ms=30000");
    }
    argv.insert(argv.end(), options_.worker_flags.begin(), options_.worker_flags.end());
    return argv;
  };
  for (int rank = 1; rank < options_.tp_size; ++rank) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        Launch(absl::StrCat("worker", index, ".rank", rank), argv_for_rank(rank));
    if (!child.ok()) return child.status();
    followers_[index].push_back(std::move(*child));
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      Launch(absl::StrCat("worker", index), argv_for_rank(0));
  if (!child.ok()) return child.status();
  workers_[index] = std::move(*child);
  return WaitUntilServing(worker_address(index), "glm4v.internal.DecoderWorker",
                          absl::Now() + kStartTimeout);
}

absl::Status TestStack::StartGateway() {
  std::string workers;
  for (int i = 0; i < options_.num_workers; ++i) {
    absl::StrAppend(&workers, i ? "," : "", worker_address(i));
  }
  std::vector<std::string> argv = {RunfilePath("services/gateway/gateway"),
                                   absl::StrCat("--model_dir=", RunfilePath(kModelDir)),
                                   absl::StrCat("--tokenizer_path=", RunfilePath(kTokenizer)),
                                   "--host=127.0.0.1",
                                   absl::StrCat("--grpc_port=", gateway_port_),
                                   absl::StrCat("--metrics_port=", gateway_metrics_port_),
                                   absl::StrCat("--vision_address=", vision_address()),
                                   absl::StrCat("--worker_addresses=", workers),
                                   "--drain_grace_seconds=10"};
  argv.insert(argv.end(), options_.gateway_flags.begin(), options_.gateway_flags.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = Launch("gateway", argv);
  if (!child.ok()) return child.status();
  gateway_ = std::move(*child);
  return WaitUntilServing(gateway_address(), "glm4v.v1.Glm4vService", absl::Now() + kStartTimeout);
}

absl::Status TestStack::Start() {
  if (absl::Status s = StartVision(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("vision: ", s.message(), "\n", LogTail("vision")));
  }
  for (int i = 0; i < options_.num_workers; ++i) {
    if (absl::Status s = StartWorker(i); !s.ok()) {
      const std::string name = absl::StrCat("worker", i);
      std::string logs = LogTail(name);
      for (int rank = 1; rank < options_.tp_size; ++rank) {
        const std::string follower = absl::StrCat(name, ".rank", rank);
        absl::StrAppend(&logs, "\n--- ", follower, ":\n", LogTail(follower));
      }
      return absl::Status(s.code(), absl::StrCat(name, ": ", s.message(), "\n", logs));
    }
  }
  if (absl::Status s = StartGateway(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("gateway: ", s.message(), "\n", LogTail("gateway")));
  }
  return absl::OkStatus();
}

void TestStack::KillVision() {
  if (vision_ != nullptr) {
    vision_->Signal(SIGKILL);
    vision_->WaitFor(absl::Seconds(10));
  }
}

void TestStack::KillWorker(int index) {
  if (workers_[index] != nullptr) {
    workers_[index]->Signal(SIGKILL);
    workers_[index]->WaitFor(absl::Seconds(10));
  }
}

void TestStack::KillFollower(int index, int rank) {
  ChildProcess* child = follower(index, rank);
  if (child != nullptr) {
    child->Signal(SIGKILL);
    child->WaitFor(absl::Seconds(10));
  }
}

std::string TestStack::gateway_address() const { return Loopback(gateway_port_); }
std::string TestStack::worker_address(int index) const { return Loopback(worker_ports_[index]); }
std::string TestStack::vision_address() const { return Loopback(vision_port_); }

std::unique_ptr<v1::Glm4vService::Stub> TestStack::GatewayStub() const {
  return v1::Glm4vService::NewStub(CreateBackendChannel(gateway_address()));
}

std::unique_ptr<internal::DecoderWorker::Stub> TestStack::WorkerStub(int index) const {
  return internal::DecoderWorker::NewStub(CreateBackendChannel(worker_address(index)));
}

std::string TestStack::LogTail(const std::string& name) const {
  std::ifstream in(absl::StrCat(log_dir_, "/", name, ".log"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

}  // namespace glm4v::testing
