// Starts the real service binaries (vision, workers, gateway) as child processes on free
// loopback ports, for multi-process tests. Children are killed when the stack is destroyed,
// also when a test fails half-way.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/child_process.h"

namespace glm4v::testing {

struct StackOptions {
  int num_workers = 1;
  // Ranks per worker: > 1 makes each worker a tensor-parallel group of worker_server processes
  // (followers --tp_rank=1..N-1 without ports, rank 0 serving gRPC) meeting on a loopback port.
  int tp_size = 1;
  std::vector<std::string> vision_flags;
  std::vector<std::string> worker_flags;  // every rank
  std::vector<std::string> gateway_flags;
};

class TestStack {
 public:
  explicit TestStack(StackOptions options);
  ~TestStack();

  // Starts everything and waits until each process reports SERVING.
  absl::Status Start();

  absl::Status StartVision();
  absl::Status StartWorker(int index);
  absl::Status StartGateway();

  ChildProcess* vision() { return vision_.get(); }
  ChildProcess* worker(int index) { return workers_[index].get(); }  // rank 0
  // Rank `rank` (1..tp_size-1) of worker `index`; its log is "worker<index>.rank<rank>".
  ChildProcess* follower(int index, int rank) { return followers_[index][rank - 1].get(); }
  ChildProcess* gateway() { return gateway_.get(); }
  void KillVision();
  void KillWorker(int index);  // rank 0 (followers notice and exit on their own)
  void KillFollower(int index, int rank);

  std::string gateway_address() const;
  std::string worker_address(int index) const;
  std::string vision_address() const;
  int gateway_metrics_port() const { return gateway_metrics_port_; }

  std::unique_ptr<v1::Glm4vService::Stub> GatewayStub() const;
  std::unique_ptr<internal::DecoderWorker::Stub> WorkerStub(int index) const;

  // The tail of a child's log (for failure messages).
  std::string LogTail(const std::string& name) const;

 private:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(const std::string& name,
                                                       std::vector<std::string> argv);

  StackOptions options_;
  std::string log_dir_;
  int vision_port_ = 0;
  std::vector<int> worker_ports_;
  int gateway_port_ = 0;
  int gateway_metrics_port_ = 0;
  std::unique_ptr<ChildProcess> vision_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::vector<std::vector<std::unique_ptr<ChildProcess>>> followers_;  // [worker][rank - 1]
  std::unique_ptr<ChildProcess> gateway_;
};

// Files under the test's runfiles.
std::string RunfilePath(const std::string& workspace_relative);
std::string ReadFileOrDie(const std::string& path);

}  // namespace glm4v::testing
