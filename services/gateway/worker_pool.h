// The decoder workers (data-parallel replicas) behind the gateway and how a request picks one.
//
// Members: a static list (--worker_addresses) or a discovery spec (--worker_discovery,
// worker_discovery.h) the poller re-resolves, the static list then being only the first
// members: new addresses join, vanished ones are drained (no new requests; the streams they
// serve finish) and dropped once idle. An empty or failed discovery keeps the members. A poller asks every member
// for GetStats a few times a second: a worker that does not answer, or reports itself
// unhealthy/draining, is skipped until it answers again (and its prefix index is forgotten: a
// restarted worker has an empty cache). Channels are never recreated: gRPC reconnects them by
// itself when a worker restarts.
//
// Routing (routing_policy.h): cache-aware by default, from the prompt's block hashes against
// what the gateway routed to each worker (prefix_index.h), its reported load and KV usage.
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
#include "services/gateway/prefix_index.h"
#include "services/gateway/prompt_blocks.h"
#include "services/gateway/routing_policy.h"

namespace glm4v {

class WorkerPool {
 public:
  // Timed-out stats probes in a row before a worker counts as down.
  static constexpr int kSlowProbesForDown = 4;

  struct Options {
    std::vector<std::string> addresses;  // static members (with discovery: the initial ones)
    std::string discovery;               // "" or a worker_discovery.h spec
    absl::Duration poll_interval = absl::Milliseconds(250);
    RoutingOptions routing;
    absl::Duration prefix_ttl = absl::Minutes(10);
    size_t prefix_max_blocks = size_t{1} << 20;  // per worker (~40 MB of index at most)
  };

  struct Worker {
    Worker(std::string address, const Options& options);

    const std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<internal::DecoderWorker::Stub> stub;
    std::atomic<bool> up{true};          // optimistic until the first probe says otherwise
    std::atomic<bool> leaving{false};    // discovery no longer lists it: no new requests
    std::atomic<int> reported_load{0};
    std::atomic<int> open_streams{0};
    std::atomic<int> max_model_len{0};   // from GetStats; 0 until the worker answered once
    std::atomic<int> kv_block_size{0};   // tokens per engine block (0: not reported yet)
    std::atomic<double> kv_usage{0};
    int failed_probes = 0;               // consecutive timed-out probes (poller thread only)
    PrefixIndex prefix;

    int load() const { return reported_load.load() + open_streams.load(); }
    // Tokens per prefix-cache block (the engine's default until the worker reported its own).
    int block_tokens() const { return kv_block_size.load() > 0 ? kv_block_size.load() : 16; }
  };

  // `metrics` may be null.
  WorkerPool(Options options, const GatewayMetrics* metrics);
  ~WorkerPool();

  // A worker for a request: UNAVAILABLE when none is up (besides `exclude`). `prompt` (may be
  // null) drives cache-aware routing, and its blocks are then recorded for the chosen worker;
  // `affinity` drives the affinity-hash policy.
  absl::StatusOr<std::shared_ptr<Worker>> Pick(PromptBlocks* prompt, uint64_t affinity,
                                               const Worker* exclude = nullptr);
  // A call failed with UNAVAILABLE: skip the worker until the poller sees it again.
  void MarkDown(Worker* worker);

  // The smallest max_model_len the workers reported (their KV capacity capped by the model's
  // seq_length): the longest sequence every replica can hold. 0 until one answered.
  int MaxModelLen() const;

  // Current members (tests, logs).
  std::vector<std::shared_ptr<Worker>> Members() const;
  size_t size() const;

 private:
  void PollLoop();
  void Probe(Worker* worker);
  // Re-resolves the discovery spec: adds, drains and drops members.
  void Rediscover();
  // False when `address` is a member already (a leaving one rejoins).
  bool AddLocked(const std::string& address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetUpGauge(const Worker& worker, bool up);

  const Options options_;
  const GatewayMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Worker>> workers_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace glm4v
