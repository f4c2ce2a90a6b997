#include "tests/stack/service_stack.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/metrics/exposition_parser.h"
#include "grpcpp/client_context.h"
#include "services/common/backend_channel.h"
#include "services/common/free_port.h"
#include "services/common/health_probe.h"

namespace glm4v::testing {
namespace {

const char* const kNames[] = {"vision", "worker", "gateway"};
const char* const kHealthService[] = {"glm4v.internal.VisionEncoder",
                                      "glm4v.internal.DecoderWorker", "glm4v.v1.Glm4vService"};

std::string OutputDir() {
  for (const char* var : {"TEST_UNDECLARED_OUTPUTS_DIR", "TEST_TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

void KillAndReap(std::unique_ptr<ChildProcess>* child) {
  if (*child == nullptr) return;
  (*child)->Signal(SIGKILL);
  (*child)->WaitFor(absl::Seconds(10));
}

}  // namespace

std::string RunfilePath(const std::string& workspace_relative) {
  if (!workspace_relative.empty() && workspace_relative[0] == '/') return workspace_relative;
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


absl::StatusOr<std::unique_ptr<Stack>> Stack::Start(StackOptions options) {
  if (options.num_workers < 1 || options.tp_size < 1) {
    return absl::InvalidArgumentError("need at least one worker of at least one rank");
  }
  // A port is free when picked but a child binds it only after loading its model (seconds at
  // real widths), so a test running beside this one can take it first. Such a start is not a
  // failure of the code under test: start again on new ports.
  constexpr int kAttempts = 4;
  absl::StatusOr<std::unique_ptr<Stack>> stack;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    stack = StartOnce(options);
    if (stack.ok() || !LostPortRace(stack.status())) break;
    std::fprintf(stderr, "stack start attempt %d lost a port to another process; retrying\n",
                 attempt);
  }
  return stack;
}

bool Stack::LostPortRace(const absl::Status& status) {
  const absl::string_view m = status.message();
  return absl::StrContains(m, "cannot listen on") || absl::StrContains(m, "cannot bind") ||
         absl::StrContains(m, "Address already in use");
}

absl::StatusOr<std::unique_ptr<Stack>> Stack::StartOnce(const StackOptions& options) {
  std::unique_ptr<Stack> stack(new Stack(options));
  stack->workers_.resize(stack->options_.num_workers);
  const std::string dir = OutputDir();
  auto assign = [&](ProcessSlot* slot, const std::string& name) -> absl::Status {
    for (int* port : {&slot->grpc_port, &slot->metrics_port}) {
      absl::StatusOr<int> p = PickFreePort();
      if (!p.ok()) return p.status();
      *port = *p;
    }
    slot->log_path = absl::StrCat(dir, "/", name, ".log");
    return absl::OkStatus();
  };
  if (absl::Status s = assign(&stack->vision_, "vision"); !s.ok()) return s;
  for (int w = 0; w < stack->options_.num_workers; ++w) {
    if (absl::Status s = assign(&stack->workers_[w], absl::StrCat("worker", w)); !s.ok()) return s;
  }
  if (absl::Status s = assign(&stack->gateway_, "gateway"); !s.ok()) return s;
  if (stack->options_.http) {
    absl::StatusOr<int> p = PickFreePort();
    if (!p.ok()) return p.status();
    stack->http_port_ = *p;
  }

  // Launch everything at once (the gateway reports NOT_SERVING until its backends answer), then
  // wait for each.
  std::vector<std::pair<Service, int>> all;
  if (stack->options_.vision) all.push_back({kVision, 0});
  for (int w = 0; w < stack->options_.num_workers; ++w) all.push_back({kWorker, w});
  all.push_back({kGateway, 0});
  for (const auto& [s, w] : all) {
    if (absl::Status st = stack->Launch(s, w); !st.ok()) return st;
  }
  for (const auto& [s, w] : all) {
    absl::Status st = stack->WaitServing(s, stack->options_.start_timeout, w);
    if (!st.ok()) {
      std::string logs = stack->LogTail(s, w);
      if (s == kWorker) {
        for (int rank = 1; rank < stack->options_.tp_size; ++rank) {
          absl::StrAppend(&logs, "\n--- rank ", rank, ":\n", stack->FollowerLogTail(w, rank));
        }
      }
      return absl::UnavailableError(absl::StrCat(kNames[s], s == kWorker ? absl::StrCat(w) : "",
                                                 " did not start: ", st.ToString(), "\n", logs));
    }
  }
  if (absl::Status up = stack->WaitBackendsUp(stack->options_.start_timeout); !up.ok()) {
    return up;
  }
  return stack;
}

Stack::~Stack() {
  // Gateway first, so that it does not log a storm of backend failures.
  KillAndReap(&gateway_.child);
  for (ProcessSlot& w : workers_) {
    KillAndReap(&w.child);
    for (auto& f : w.followers) KillAndReap(&f);
  }
  KillAndReap(&vision_.child);
}

Stack::ProcessSlot& Stack::Slot(Service s, int worker) {
  return s == kVision ? vision_ : s == kGateway ? gateway_ : workers_.at(worker);
}
const Stack::ProcessSlot& Stack::Slot(Service s, int worker) const {
  return s == kVision ? vision_ : s == kGateway ? gateway_ : workers_.at(worker);
}

std::string Stack::address(Service s, int worker) const {
  return Loopback(Slot(s, worker).grpc_port);
}

ChildProcess* Stack::follower(int worker, int rank) {
  std::vector<std::unique_ptr<ChildProcess>>& f = workers_.at(worker).followers;
  return rank >= 1 && rank <= static_cast<int>(f.size()) ? f[rank - 1].get() : nullptr;
}

std::vector<std::string> Stack::Argv(Service s, int worker) const {
  const StackOptions& o = options_;
  const ProcessSlot& slot = Slot(s, worker);
  const std::string bin = s == kVision ? o.vision_bin : s == kWorker ? o.worker_bin : o.gateway_bin;
  std::vector<std::string> argv = {RunfilePath(bin),
                                   "--host=127.0.0.1",
                                   absl::StrCat("--grpc_port=", slot.grpc_port),
                                   absl::StrCat("--metrics_port=", slot.metrics_port),
                                   absl::StrCat("--drain_grace_seconds=", o.drain_grace_seconds),
                                   "--model_dir=" + RunfilePath(o.model_dir)};
  switch (s) {
    case kVision:
      argv.insert(argv.end(), o.vision_flags.begin(), o.vision_flags.end());
      break;
    case kWorker:
      if (o.worker_kv_cache_bytes > 0) {
        argv.push_back(absl::StrCat("--kv_cache_bytes=", o.worker_kv_cache_bytes));
      }
      argv.insert(argv.end(), o.worker_flags.begin(), o.worker_flags.end());
      break;
    case kGateway: {
      std::vector<std::string> workers;
      for (int w = 0; w < o.num_workers; ++w) workers.push_back(worker_address(w));
      argv.push_back("--tokenizer_path=" + RunfilePath(o.tokenizer_path));
      if (o.vision) argv.push_back("--vision_address=" + vision_address());
      argv.push_back("--worker_addresses=" + absl::StrJoin(workers, ","));
      if (o.http) argv.push_back(absl::StrCat("--http_port=", http_port_));
      argv.insert(argv.end(), o.gateway_flags.begin(), o.gateway_flags.end());
      break;
    }
  }
  return argv;
}

std::string Stack::FollowerLogPath(int worker, int rank) const {
  return absl::StrCat(OutputDir(), "/worker", worker, ".rank", rank, ".log");
}

absl::Status Stack::Launch(Service s, int worker) {
  ProcessSlot& slot = Slot(s, worker);
  std::vector<std::string> argv = Argv(s, worker);
  if (s == kWorker && options_.tp_size > 1) {
    // A (re)started worker is a whole new group on a fresh rendezvous port; followers have no
    // gRPC or metrics port.
    absl::StatusOr<int> rendezvous = PickFreePort();
    if (!rendezvous.ok()) return rendezvous.status();
    argv.push_back(absl::StrCat("--tp_size=", options_.tp_size));
    argv.push_back(absl::StrCat("--tp_rendezvous=", Loopback(*rendezvous)));
    argv.push_back("--tp_connect_timeout_ms=30000");
    slot.followers.clear();
    for (int rank = 1; rank < options_.tp_size; ++rank) {
      std::vector<std::string> follower_argv = argv;
      for (std::string& arg : follower_argv) {
        if (arg.rfind("--grpc_port=", 0) == 0) arg = "--grpc_port=0";
        if (arg.rfind("--metrics_port=", 0) == 0) arg = "--metrics_port=-1";
      }
      follower_argv.push_back(absl::StrCat("--tp_rank=", rank));
      ChildProcess::Options opts;
      opts.log_path = FollowerLogPath(worker, rank);
      absl::StatusOr<std::unique_ptr<ChildProcess>> child =
          ChildProcess::Start(follower_argv, opts);
      if (!child.ok()) return child.status();
      slot.followers.push_back(*std::move(child));
    }
    argv.push_back("--tp_rank=0");
  }
  ChildProcess::Options opts;
  opts.log_path = slot.log_path;
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(argv, opts);
  if (!child.ok()) return child.status();
  slot.child = *std::move(child);
  return absl::OkStatus();
}

void Stack::Kill(Service s, int worker) { KillAndReap(&Slot(s, worker).child); }

void Stack::KillFollower(int worker, int rank) {
  std::vector<std::unique_ptr<ChildProcess>>& f = workers_.at(worker).followers;
  if (rank >= 1 && rank <= static_cast<int>(f.size())) KillAndReap(&f[rank - 1]);
}

absl::Status Stack::Restart(Service s, int worker) {
  ProcessSlot& slot = Slot(s, worker);
  KillAndReap(&slot.child);
  for (auto& f : slot.followers) KillAndReap(&f);
  slot.child.reset();
  if (absl::Status st = Launch(s, worker); !st.ok()) return st;
  absl::Status st = WaitServing(s, options_.start_timeout, worker);
  if (!st.ok()) {
    return absl::Status(st.code(), absl::StrCat(st.message(), "\n", LogTail(s, worker)));
  }
  if (s == kGateway) return st;
  return WaitBackendsUp(options_.start_timeout);
}

absl::Status Stack::WaitServing(Service s, absl::Duration timeout, int worker) {
  ProcessSlot& slot = Slot(s, worker);
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status st = absl::DeadlineExceededError("not started");
  while (absl::Now() < deadline) {
    if (slot.child == nullptr || slot.child->Poll()) {
      return absl::InternalError(absl::StrCat(
          kNames[s], " exited: ", slot.child ? slot.child->DescribeExit() : "not running"));
    }
    st = WaitUntilServing(address(s, worker), kHealthService[s],
                          std::min(deadline, absl::Now() + absl::Seconds(1)));
    if (st.ok()) return st;
  }
  return st;
}

absl::Status Stack::WaitBackendsUp(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const int backends = (options_.vision ? 1 : 0) + options_.num_workers;
  std::string last = "no scrape yet";
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> text = ScrapeMetrics(kGateway);
    if (text.ok()) {
      absl::StatusOr<metrics::ParsedExposition> parsed = metrics::ParseExposition(*text);
      if (!parsed.ok()) return parsed.status();
      const metrics::ParsedFamily* f = parsed->FindFamily("glm4v_gateway_backend_up");
      int up = 0, total = 0;
      if (f != nullptr) {
        for (const auto& sample : f->samples) {
          ++total;
          up += sample.value == 1 ? 1 : 0;
        }
      }
      if (total >= backends && up == total) return absl::OkStatus();
      last = absl::StrCat(up, " of ", total, " backends up");
    } else {
      last = std::string(text.status().message());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("gateway backends not up: ", last, "\n",
                                                  LogTail(kGateway)));
}

std::unique_ptr<v1::Glm4vService::Stub> Stack::GatewayStub() const {
  return v1::Glm4vService::NewStub(CreateBackendChannel(gateway_address()));
}

std::unique_ptr<internal::DecoderWorker::Stub> Stack::WorkerStub(int worker) const {
  return internal::DecoderWorker::NewStub(CreateBackendChannel(worker_address(worker)));
}

absl::StatusOr<internal::WorkerStats> Stack::WorkerStats(int worker) const {
  std::unique_ptr<internal::DecoderWorker::Stub> stub = WorkerStub(worker);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  internal::WorkerStats stats;
  grpc::Status st = stub->GetStats(&ctx, internal::StatsRequest(), &stats);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  return stats;
}

absl::StatusOr<std::string> Stack::ScrapeMetrics(Service s, int worker) const {
  httplib::Client client("127.0.0.1", metrics_port(s, worker));
  client.set_read_timeout(5, 0);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) {
    return absl::UnavailableError(absl::StrCat("cannot scrape ", kNames[s], " metrics"));
  }
  return res->body;
}

std::string Stack::LogTail(Service s, int worker, size_t max_bytes) const {
  return Tail(log_path(s, worker), max_bytes);
}

std::string Stack::FollowerLogTail(int worker, int rank, size_t max_bytes) const {
  return Tail(FollowerLogPath(worker, rank), max_bytes);
}

}  // namespace glm4v::testing
