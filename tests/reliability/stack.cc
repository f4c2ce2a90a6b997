#include "tests/reliability/stack.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics/exposition_parser.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "services/common/free_port.h"
#include "services/common/health_probe.h"

namespace glm4v::testing {
namespace {

const char* kNames[] = {"vision", "worker", "gateway"};
const char* kHealthService[] = {"glm4v.internal.VisionEncoder", "glm4v.internal.DecoderWorker",
                                "glm4v.v1.Glm4vService"};

std::string OutputDir() {
  for (const char* var : {"TEST_UNDECLARED_OUTPUTS_DIR", "TEST_TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Stack>> Stack::Start(StackOptions options) {
  std::unique_ptr<Stack> stack(new Stack(std::move(options)));
  for (int s = 0; s < 3; ++s) {
    for (int* port : {&stack->grpc_port_[s], &stack->metrics_port_[s]}) {
      auto p = PickFreePort();
      if (!p.ok()) return p.status();
      *port = *p;
    }
    stack->log_path_[s] = absl::StrCat(OutputDir(), "/", kNames[s], ".log");
  }
  if (stack->options_.http) {
    auto p = PickFreePort();
    if (!p.ok()) return p.status();
    stack->http_port_ = *p;
  }
  // Backends first: the gateway reports NOT_SERVING until they answer.
  for (Service s : {kVision, kWorker, kGateway}) {
    absl::Status st = stack->Launch(s);
    if (!st.ok()) return st;
  }
  for (Service s : {kVision, kWorker, kGateway}) {
    absl::Status st = stack->WaitServing(s, stack->options_.start_timeout);
    if (!st.ok()) {
      return absl::UnavailableError(absl::StrCat(kNames[s], " did not start: ", st.ToString(),
                                                 "\n", stack->LogTail(s)));
    }
  }
  absl::Status up = stack->WaitBackendsUp(stack->options_.start_timeout);
  if (!up.ok()) return up;
  return stack;
}

Stack::~Stack() {
  // Gateway first, so that it does not log a storm of backend failures.
  for (int s = 2; s >= 0; --s) procs_[s].reset();
}

std::vector<std::string> Stack::Argv(Service s) const {
  const StackOptions& o = options_;
  std::vector<std::string> argv;
  auto common = [&](const std::string& bin) {
    argv = {bin, absl::StrCat("--host=127.0.0.1"), absl::StrCat("--grpc_port=", grpc_port_[s]),
            absl::StrCat("--metrics_port=", metrics_port_[s]),
            absl::StrCat("--drain_grace_seconds=", o.drain_grace_seconds)};
  };
  switch (s) {
    case kVision:
      common(o.vision_bin);
      argv.push_back("--model_dir=" + o.model_dir);
      argv.insert(argv.end(), o.vision_flags.begin(), o.vision_flags.end());
      break;
    case kWorker:
      common(o.worker_bin);
      argv.push_back("--model_dir=" + o.model_dir);
      argv.insert(argv.end(), o.worker_flags.begin(), o.worker_flags.end());
      break;
    case kGateway:
      common(o.gateway_bin);
      argv.push_back("--model_dir=" + o.model_dir);
      argv.push_back("--tokenizer_path=" + o.tokenizer_path);
      argv.push_back("--vision_address=" + vision_address());
      argv.push_back("--worker_addresses=" + worker_address());
      if (o.http) argv.push_back(absl::StrCat("--http_port=", http_port_));
      argv.insert(argv.end(), o.gateway_flags.begin(), o.gateway_flags.end());
      break;
  }
  return argv;
}

absl::Status Stack::Launch(Service s) {
  ChildProcess::Options opts;
  opts.log_path = log_path_[s];
  auto child = ChildProcess::Start(Argv(s), opts);
  if (!child.ok()) return child.status();
  procs_[s] = *std::move(child);
  return absl::OkStatus();
}

absl::Status Stack::WaitServing(Service s, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status st = absl::DeadlineExceededError("not started");
  while (absl::Now() < deadline) {
    if (procs_[s]->Poll()) {
      return absl::InternalError(
          absl::StrCat(kNames[s], " exited: ", procs_[s]->DescribeExit()));
    }
    st = WaitUntilServing(Address(grpc_port_[s]), kHealthService[s],
                          std::min(deadline, absl::Now() + absl::Seconds(1)));
    if (st.ok()) return st;
  }
  return st;
}

absl::Status Stack::Restart(Service s) {
  procs_[s].reset();  // SIGKILL + reap
  absl::Status st = Launch(s);
  if (!st.ok()) return st;
  st = WaitServing(s, options_.start_timeout);
  if (!st.ok() || s == kGateway) return st;
  return WaitBackendsUp(options_.start_timeout);
}

absl::Status Stack::WaitBackendsUp(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no scrape yet";
  while (absl::Now() < deadline) {
    auto text = ScrapeMetrics(kGateway);
    if (text.ok()) {
      auto parsed = metrics::ParseExposition(*text);
      if (!parsed.ok()) return parsed.status();
      const metrics::ParsedFamily* f = parsed->FindFamily("glm4v_gateway_backend_up");
      int up = 0, total = 0;
      if (f != nullptr) {
        for (const auto& sample : f->samples) {
          ++total;
          up += sample.value == 1 ? 1 : 0;
        }
      }
      if (total >= 2 && up == total) return absl::OkStatus();  // vision + >= 1 worker
      last = absl::StrCat(up, " of ", total, " backends up");
    } else {
      last = std::string(text.status().message());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("gateway backends not up: ", last, "\n",
                                                  LogTail(kGateway)));
}

absl::StatusOr<glm4v::internal::WorkerStats> Stack::WorkerStats() {
  auto stub = glm4v::internal::DecoderWorker::NewStub(
      grpc::CreateChannel(worker_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  glm4v::internal::WorkerStats stats;
  grpc::Status st = stub->GetStats(&ctx, glm4v::internal::StatsRequest(), &stats);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  return stats;
}

absl::StatusOr<std::string> Stack::ScrapeMetrics(Service s) {
  httplib::Client client("127.0.0.1", metrics_port_[s]);
  client.set_read_timeout(5, 0);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) {
    return absl::UnavailableError(absl::StrCat("cannot scrape ", kNames[s], " metrics"));
  }
  return res->body;
}

std::string Stack::LogTail(Service s, size_t max_bytes) const {
  std::ifstream f(log_path_[s], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string all = ss.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

absl::StatusOr<long> ReadRssKiB(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  if (!f) return absl::NotFoundError(absl::StrCat("no /proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line.substr(6), ' ', absl::SkipWhitespace());
    long kib = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
  }
  return absl::InternalError(absl::StrCat("no VmRSS for pid ", pid));
}

}  // namespace glm4v::testing
