// The real serving stack (vision, one worker, gateway) on loopback for multi-process tests:
// each process is the production binary, started from the test's runfiles on free ports, with
// handles to signal, kill and restart them individually (which the reliability tests need and a
// launcher that owns its children cannot offer).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/glm4v/internal/worker.pb.h"
#include "services/common/child_process.h"

namespace glm4v::testing {

struct StackOptions {
  // Runfiles-relative binaries (the test lists them in `data`).
  std::string gateway_bin = "services/gateway/gateway";
  std::string worker_bin = "worker/server/worker_server";
  std::string vision_bin = "services/vision/vision_server";
  std::string model_dir = "tests/data/tiny-glm4v/model";
  std::string tokenizer_path = "tests/data/tiny-glm4v/tokenizer/tokenizer.model";
  bool http = true;  // give the gateway an --http_port
  int drain_grace_seconds = 10;
  std::vector<std::string> gateway_flags, worker_flags, vision_flags;  // extra --flag=value
  absl::Duration start_timeout = absl::Seconds(60);
};

class Stack {
 public:
  enum Service { kVision = 0, kWorker = 1, kGateway = 2 };

  static absl::StatusOr<std::unique_ptr<Stack>> Start(StackOptions options);
  ~Stack();  // SIGKILLs whatever still runs

  std::string gateway_address() const { return Address(grpc_port_[kGateway]); }
  std::string worker_address() const { return Address(grpc_port_[kWorker]); }
  std::string vision_address() const { return Address(grpc_port_[kVision]); }
  int http_port() const { return http_port_; }
  int metrics_port(Service s) const { return metrics_port_[s]; }
  ChildProcess* process(Service s) { return procs_[s].get(); }
  pid_t pid(Service s) const { return procs_[s]->pid(); }

  // SIGKILL and start again on the same ports; waits until it serves.
  absl::Status Restart(Service s);
  // Waits until the gateway reports every backend up (glm4v_gateway_backend_up == 1): its
  // health says SERVING before its poller has seen the backends.
  absl::Status WaitBackendsUp(absl::Duration timeout);
  // Waits until `s` reports SERVING on gRPC health.
  absl::Status WaitServing(Service s, absl::Duration timeout);
  // Where each process's stderr goes (for failure messages).
  std::string log_path(Service s) const { return log_path_[s]; }
  // The worker's own view of its engine (running/waiting sequences, KV blocks).
  absl::StatusOr<glm4v::internal::WorkerStats> WorkerStats();
  // GET /metrics of a process (Prometheus text).
  absl::StatusOr<std::string> ScrapeMetrics(Service s);
  // Last `max_bytes` of a process's log.
  std::string LogTail(Service s, size_t max_bytes = 4000) const;

 private:
  explicit Stack(StackOptions options) : options_(std::move(options)) {}
  static std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }
  std::vector<std::string> Argv(Service s) const;
  absl::Status Launch(Service s);

  StackOptions options_;
  int grpc_port_[3] = {0, 0, 0};
  int metrics_port_[3] = {0, 0, 0};
  int http_port_ = 0;
  std::string log_path_[3];
  std::unique_ptr<ChildProcess> procs_[3];
};

// VmRSS of a live process in KiB, from /proc/<pid>/status.
absl::StatusOr<long> ReadRssKiB(pid_t pid);

}  // namespace glm4v::testing
