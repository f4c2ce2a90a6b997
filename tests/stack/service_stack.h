// The real serving stack (vision, N decoder workers — each optionally a tensor-parallel group of
// worker_server ranks — and the gateway) on loopback, for multi-process tests. Every process is
// the production binary started from the test's runfiles on free ports, with handles to signal,
// kill and restart each one on its ports (which failure and reliability tests need and a
// launcher that owns its children cannot offer). Children are killed when the Stack is
// destroyed, also when a test fails half-way.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/child_process.h"

namespace glm4v::testing {

struct StackOptions {
  int num_workers = 1;
  // Ranks per worker: > 1 makes each worker a tensor-parallel group (followers --tp_rank=1..N-1
  // without a gRPC port, rank 0 serving) meeting on a loopback rendezvous port.
  int tp_size = 1;
  // Runfiles-relative binaries and data (the test lists them in `data`).
  std::string gateway_bin = "services/gateway/gateway";
  std::string worker_bin = "worker/server/worker_server";
  std::string vision_bin = "services/vision/vision_server";
  std::string model_dir = "tests/data/tiny-glm4v/model";  // or an absolute path
  std::string tokenizer_path = "tests/data/tiny-glm4v/tokenizer/tokenizer.model";
  bool http = true;                 // give the gateway an --http_port
  bool vision = true;               // false for a text-only model: no vision process
  int drain_grace_seconds = 10;     // every process
  int64_t worker_kv_cache_bytes = 32 << 20;  // --kv_cache_bytes of every rank (0: default)
  // Extra --flag=value per service (worker_flags go to every rank).
  std::vector<std::string> gateway_flags, worker_flags, vision_flags;
  absl::Duration start_timeout = absl::Seconds(60);
};

class Stack {
 public:
  enum Service { kVision = 0, kWorker = 1, kGateway = 2 };

  // Starts everything and waits until each process reports SERVING and the gateway sees every
  // backend up. Errors carry the failing process's log tail.
  // A start that loses one of its ports to another process (it was free when picked) is retried
  // on new ports.
  static absl::StatusOr<std::unique_ptr<Stack>> Start(StackOptions options);
  ~Stack();  // SIGKILLs whatever still runs, gateway first

  // `worker` selects the decoder worker (its rank 0); it is ignored for vision and gateway.
  std::string address(Service s, int worker = 0) const;
  std::string gateway_address() const { return address(kGateway); }
  std::string worker_address(int worker = 0) const { return address(kWorker, worker); }
  std::string vision_address() const { return address(kVision); }
  int http_port() const { return http_port_; }
  int metrics_port(Service s, int worker = 0) const { return Slot(s, worker).metrics_port; }
  ChildProcess* process(Service s, int worker = 0) { return Slot(s, worker).child.get(); }
  pid_t pid(Service s, int worker = 0) { return process(s, worker)->pid(); }
  // Rank `rank` (1..tp_size-1) of worker `worker`.
  ChildProcess* follower(int worker, int rank);

  // SIGKILL and reap (a killed rank 0 takes its followers with it: they notice and exit).
  void Kill(Service s, int worker = 0);
  void KillFollower(int worker, int rank);
  // Kills `s` if it runs (a worker with its whole TP group) and starts it again on the same
  // ports; waits until it serves and, for a backend, until the gateway sees it up again.
  absl::Status Restart(Service s, int worker = 0);
  // Waits until `s` reports SERVING on gRPC health; fails fast if it exited.
  absl::Status WaitServing(Service s, absl::Duration timeout, int worker = 0);
  // Waits until the gateway reports every backend up (glm4v_gateway_backend_up == 1): its
  // health says SERVING before its poller has seen the backends.
  absl::Status WaitBackendsUp(absl::Duration timeout);

  std::unique_ptr<v1::Glm4vService::Stub> GatewayStub() const;
  std::unique_ptr<internal::DecoderWorker::Stub> WorkerStub(int worker = 0) const;
  // The worker's own view of its engine (running/waiting sequences, KV blocks).
  absl::StatusOr<internal::WorkerStats> WorkerStats(int worker = 0) const;
  // GET /metrics of a process (Prometheus text).
  absl::StatusOr<std::string> ScrapeMetrics(Service s, int worker = 0) const;

  // Where a process's stderr goes, and its last `max_bytes` (for failure messages).
  std::string log_path(Service s, int worker = 0) const { return Slot(s, worker).log_path; }
  std::string LogTail(Service s, int worker = 0, size_t max_bytes = 4000) const;
  std::string FollowerLogTail(int worker, int rank, size_t max_bytes = 4000) const;

 private:
  struct ProcessSlot {
    int grpc_port = 0;
    int metrics_port = 0;
    std::string log_path;
    std::unique_ptr<ChildProcess> child;
    std::vector<std::unique_ptr<ChildProcess>> followers;  // TP ranks 1..tp_size-1
  };

  explicit Stack(StackOptions options) : options_(std::move(options)) {}
  static absl::StatusOr<std::unique_ptr<Stack>> StartOnce(const StackOptions& options);
  static bool LostPortRace(const absl::Status& status);
  ProcessSlot& Slot(Service s, int worker);
  const ProcessSlot& Slot(Service s, int worker) const;
  std::vector<std::string> Argv(Service s, int worker) const;
  std::string FollowerLogPath(int worker, int rank) const;
  // Starts the process (a worker: its followers, then rank 0) without waiting.
  absl::Status Launch(Service s, int worker);

  StackOptions options_;
  ProcessSlot vision_, gateway_;
  std::vector<ProcessSlot> workers_;
  int http_port_ = 0;
};

// A path under the test's runfiles (Bazel runs tests from <runfiles>/<workspace>); an absolute
// path is returned as is.
std::string RunfilePath(const std::string& workspace_relative);
std::string ReadFileOrDie(const std::string& path);

}  // namespace glm4v::testing
