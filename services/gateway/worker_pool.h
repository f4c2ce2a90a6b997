// The decoder workers (data-parallel replicas) behind the gateway and how a request picks one.
//
// A poller asks every worker for GetStats a few times a second: a worker that does not answer,
// or reports itself unhealthy/draining, is skipped until it answers again. Channels are never
// recreated: gRPC reconnects them by itself when a worker restarts.
//
// Routing: least loaded (running + waiting as last reported + streams this gateway opened since),
// but a request goes to its "home" worker (affinity hash, e.g. of the first prompt block or the
// image) while that one is within kAffinitySlack of the least loaded, so repeated prefixes land
// where their KV blocks are cached.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "services/gateway/gateway_metrics.h"

namespace glm4v {

class WorkerPool {
 public:
  static constexpr int kAffinitySlack = 2;

  struct Worker {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<internal::DecoderWorker::Stub> stub;
    std::atomic<bool> up{true};  // optimistic until the first probe says otherwise
    std::atomic<int> reported_load{0};
    std::atomic<int> max_model_len{0};  // from GetStats; 0 until the worker answered once
    std::atomic<int> open_streams{0};
    metrics::Gauge* up_gauge = nullptr;

    int load() const { return reported_load.load() + open_streams.load(); }
  };

  // `metrics` may be null.
  WorkerPool(const std::vector<std::string>& addresses, const GatewayMetrics* metrics,
             absl::Duration poll_interval = absl::Milliseconds(250));
  ~WorkerPool();

  // UNAVAILABLE when no worker is up (besides `exclude`).
  absl::StatusOr<Worker*> Pick(uint64_t affinity, const Worker* exclude = nullptr);
  // A call failed with UNAVAILABLE: skip the worker until the poller sees it again.
  void MarkDown(Worker* worker);

  // The smallest max_model_len the workers reported (their KV capacity capped by the model's
  // seq_length): the longest sequence every replica can hold. 0 until one answered.
  int MaxModelLen() const;

  size_t size() const { return workers_.size(); }
  const Worker& worker(size_t i) const { return *workers_[i]; }

 private:
  void PollLoop(absl::Duration interval);
  void Probe(Worker* worker);

  std::vector<std::unique_ptr<Worker>> workers_;
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace glm4v
