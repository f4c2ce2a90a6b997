// Starts the whole stack on one machine: vision, N decoder workers and the gateway, each a
// child process with the flags of docs/SERVICES.md. Waits until every process reports SERVING
// (gRPC health), prints the gateway address, forwards SIGINT/SIGTERM (gateway first, so it
// drains before its backends go), and exits non-zero as soon as any child dies on its own.
// With --tp_size=N > 1 each worker is a tensor-parallel group: follower ranks 1..N-1 (the same
// worker binary with --tp_rank, no ports) start first, then rank 0, which serves gRPC once the
// group has met at a free loopback rendezvous port; the ranks of a group stop together (rank 0
// drains and then ends the group). A text-only checkpoint (no vision_config, e.g. GLM-4-9B-chat)
// runs without a vision service.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/model_config.h"
#include "common/status_macros.h"
#include "services/common/child_process.h"
#include "services/common/free_port.h"
#include "services/common/health_probe.h"
#include "services/common/shutdown_signal.h"

ABSL_FLAG(std::string, model_dir, "tests/data/tiny-glm4v/model", "Checkpoint directory.");
ABSL_FLAG(std::string, tokenizer_path, "tests/data/tiny-glm4v/tokenizer/tokenizer.model",
          "tokenizer.model for the gateway.");
ABSL_FLAG(std::string, bin_dir, "",
          "Directory holding services/..., worker/server/... binaries (default: next to this "
          "binary in bazel-bin, or its runfiles).");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address every process binds to.");
ABSL_FLAG(int, gateway_port, 50051, "Gateway gRPC port.");
ABSL_FLAG(int, gateway_metrics_port, 9480, "Gateway metrics port.");
ABSL_FLAG(int, vision_port, 50061, "Vision gRPC port.");
ABSL_FLAG(int, vision_metrics_port, 9481, "Vision metrics port.");
ABSL_FLAG(int, num_workers, 1, "Decoder workers (data-parallel replicas).");
ABSL_FLAG(int, worker_port, 50071, "First worker's gRPC port (then +1 per worker).");
ABSL_FLAG(int, worker_metrics_port, 9482, "First worker's metrics port (then +1 per worker).");
ABSL_FLAG(int, tp_size, 1,
          "Tensor-parallel ranks per worker (processes; with --backend=cuda rank R uses GPU R).");
ABSL_FLAG(std::string, backend, "cpu", "Kernel backend for vision and workers.");
ABSL_FLAG(std::string, log_dir, "",
          "Write each child's output to <log_dir>/<name>.log "
          "(default: inherit stderr).");
ABSL_FLAG(std::string, vision_flags, "", "Extra flags for the vision service (space-separated).");
ABSL_FLAG(std::string, worker_flags, "", "Extra flags for every worker (space-separated).");
ABSL_FLAG(std::string, gateway_flags, "", "Extra flags for the gateway (space-separated).");
ABSL_FLAG(int, startup_timeout_seconds, 120, "How long each process may take to be healthy.");
ABSL_FLAG(int, drain_grace_seconds, 20, "Drain grace passed to every process.");

namespace glm4v {
namespace {

struct Child {
  std::string name;
  std::string address;  // gRPC host:port; empty for a follower rank (no ports)
  std::string health_service;
  std::unique_ptr<ChildProcess> process;
};

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.find_last_of('/'));
}

// bazel-bin/tools/launcher/launch -> bazel-bin; or the runfiles tree of a `bazel run`.
std::string FindBinDir() {
  if (!absl::GetFlag(FLAGS_bin_dir).empty()) return absl::GetFlag(FLAGS_bin_dir);
  const std::string self = SelfDir();
  const std::string runfiles = self + "/launch.runfiles/glm4v_serving";
  if (access((runfiles + "/services/gateway/gateway").c_str(), X_OK) == 0) return runfiles;
  return self + "/../..";
}

std::vector<std::string> SplitFlags(const std::string& flags) {
  return absl::StrSplit(flags, ' ', absl::SkipEmpty());
}

absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(const std::string& name,
                                                    std::vector<std::string> argv) {
  ChildProcess::Options options;
  if (!absl::GetFlag(FLAGS_log_dir).empty()) {
    options.log_path = absl::StrCat(absl::GetFlag(FLAGS_log_dir), "/", name, ".log");
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, options);
  if (child.ok()) {
    LOG_INFO("started").With("process", name).With("pid", (*child)->pid()).With("binary", argv[0]);
  }
  return child;
}

// Stops children in order: SIGTERM, then wait up to the grace period (+ margin) for each.
void StopAll(std::vector<Child>& children) {
  const absl::Duration grace = absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds) + 5);
  for (Child& child : children) {
    if (child.process == nullptr || child.process->exited()) continue;
    child.process->Stop(grace);
    LOG_INFO("stopped").With("process", child.name).With("exit", child.process->DescribeExit());
  }
}

absl::Status WaitHealthy(std::vector<Child>& children, size_t first) {
  const absl::Time deadline =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_startup_timeout_seconds));
  for (size_t i = first; i < children.size(); ++i) {
    Child& child = children[i];
    // Follower ranks serve nothing; their rank 0 turns SERVING only once all of them joined.
    if (child.address.empty()) continue;
    while (true) {
      for (Child& any : children) {
        if (any.process->Poll()) {
          return absl::InternalError(absl::StrCat(any.name, " exited during startup (",
                                                  any.process->DescribeExit(), ")"));
        }
      }
      absl::Status status = WaitUntilServing(child.address, child.health_service,
                                             std::min(deadline, absl::Now() + absl::Seconds(1)));
      if (status.ok()) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(child.name, " not healthy in time: ", status.message()));
      }
      int signo;
      if (ShutdownSignal::WaitFor(absl::ZeroDuration(), &signo)) {
        return absl::CancelledError("interrupted during startup");
      }
    }
    LOG_INFO("healthy").With("process", child.name).With("address", child.address);
  }
  return absl::OkStatus();
}

absl::Status Run(std::vector<Child>& children) {
  RETURN_IF_ERROR(InitLogging());
  SetLogComponent("launcher");
  const std::string bin = FindBinDir();
  const std::string host = absl::GetFlag(FLAGS_host);
  const std::string grace =
      absl::StrCat("--drain_grace_seconds=", absl::GetFlag(FLAGS_drain_grace_seconds));
  const std::string model_dir = absl::StrCat("--model_dir=", absl::GetFlag(FLAGS_model_dir));
  const std::string backend = absl::StrCat("--backend=", absl::GetFlag(FLAGS_backend));
  const std::string bind = absl::StrCat("--host=", host);

  ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(absl::GetFlag(FLAGS_model_dir)));
  std::string vision_address;
  // Backends first (they load weights in parallel), then the gateway.
  if (!config.has_vision) {
    LOG_INFO("text-only model: no vision service").With("model_dir", absl::GetFlag(FLAGS_model_dir));
  } else {
    const int port = absl::GetFlag(FLAGS_vision_port);
    std::vector<std::string> argv = {
        bin + "/services/vision/vision_server",
        model_dir,
        backend,
        bind,
        absl::StrCat("--grpc_port=", port),
        absl::StrCat("--metrics_port=", absl::GetFlag(FLAGS_vision_metrics_port)),
        grace};
    for (std::string& f : SplitFlags(absl::GetFlag(FLAGS_vision_flags))) argv.push_back(f);
    ASSIGN_OR_RETURN(auto process, Spawn("vision", argv));
    vision_address = absl::StrCat(host, ":", port);
    children.push_back({"vision", vision_address, "glm4v.internal.VisionEncoder",
                        std::move(process)});
  }
  std::string worker_addresses;
  const int tp_size = absl::GetFlag(FLAGS_tp_size);
  if (tp_size < 1) return absl::InvalidArgumentError("--tp_size must be >= 1");
  const std::string tp = absl::StrCat("--tp_size=", tp_size);
  for (int i = 0; i < absl::GetFlag(FLAGS_num_workers); ++i) {
    const int port = absl::GetFlag(FLAGS_worker_port) + i;
    const std::string name = absl::StrCat("worker", i);
    auto worker_argv = [&](int rank, const std::string& rendezvous) {
      const bool follower = rank > 0;
      std::vector<std::string> argv = {
          bin + "/worker/server/worker_server",
          model_dir,
          backend,
          bind,
          tp,
          absl::StrCat("--grpc_port=", follower ? 0 : port),
          absl::StrCat("--metrics_port=",
                       follower ? -1 : absl::GetFlag(FLAGS_worker_metrics_port) + i),
          grace};
      if (tp_size > 1) {
        argv.push_back(absl::StrCat("--tp_rank=", rank));
        argv.push_back(absl::StrCat("--tp_rendezvous=", rendezvous));
      }
      for (std::string& f : SplitFlags(absl::GetFlag(FLAGS_worker_flags))) argv.push_back(f);
      return argv;
    };
    // Followers first (they load their shards while rank 0 loads its own); listed after rank 0
    // so that stopping reaches rank 0 first: it drains, then ends the group, and they exit.
    std::string rendezvous;
    std::vector<Child> followers;
    if (tp_size > 1) {
      ASSIGN_OR_RETURN(const int tp_port, PickFreePort());
      rendezvous = absl::StrCat("127.0.0.1:", tp_port);
      for (int rank = 1; rank < tp_size; ++rank) {
        const std::string rank_name = absl::StrCat(name, ".rank", rank);
        ASSIGN_OR_RETURN(auto process, Spawn(rank_name, worker_argv(rank, rendezvous)));
        followers.push_back({rank_name, "", "", std::move(process)});
      }
    }
    ASSIGN_OR_RETURN(auto process, Spawn(name, worker_argv(0, rendezvous)));
    children.push_back(
        {name, absl::StrCat(host, ":", port), "glm4v.internal.DecoderWorker", std::move(process)});
    for (Child& follower : followers) children.push_back(std::move(follower));
    absl::StrAppend(&worker_addresses, i ? "," : "", host, ":", port);
  }
  RETURN_IF_ERROR(WaitHealthy(children, 0));
  {
    const int port = absl::GetFlag(FLAGS_gateway_port);
    std::vector<std::string> argv = {
        bin + "/services/gateway/gateway",
        model_dir,
        bind,
        absl::StrCat("--tokenizer_path=", absl::GetFlag(FLAGS_tokenizer_path)),
        absl::StrCat("--grpc_port=", port),
        absl::StrCat("--metrics_port=", absl::GetFlag(FLAGS_gateway_metrics_port)),
        absl::StrCat("--worker_addresses=", worker_addresses),
        grace};
    if (!vision_address.empty()) argv.push_back("--vision_address=" + vision_address);
    for (std::string& f : SplitFlags(absl::GetFlag(FLAGS_gateway_flags))) argv.push_back(f);
    ASSIGN_OR_RETURN(auto process, Spawn("gateway", argv));
    // The gateway goes first when stopping: it drains while its backends are still up.
    children.insert(children.begin(), {"gateway", absl::StrCat(host, ":", port),
                                       "glm4v.v1.Glm4vService", std::move(process)});
  }
  RETURN_IF_ERROR(WaitHealthy(children, 0));
  std::printf("READY gateway=%s\n", children[0].address.c_str());
  std::fflush(stdout);

  while (true) {
    int signo = 0;
    if (ShutdownSignal::WaitFor(absl::Milliseconds(200), &signo)) {
      LOG_INFO("stopping the stack").With("signal", signo);
      return absl::OkStatus();
    }
    for (Child& child : children) {
      if (child.process->Poll()) {
        return absl::InternalError(
            absl::StrCat(child.name, " died (", child.process->DescribeExit(), ")"));
      }
    }
  }
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  glm4v::ShutdownSignal::Install();
  absl::SetProgramUsageMessage("Starts vision, worker(s) and gateway on this machine.");
  absl::ParseCommandLine(argc, argv);
  std::vector<glm4v::Child> children;
  absl::Status status = glm4v::Run(children);
  glm4v::StopAll(children);
  if (!status.ok()) {
    LOG_ERROR("launcher failed").With("error", status);
    return 1;
  }
  return 0;
}
