#include "services/gateway/worker_pool.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "grpcpp/client_context.h"
#include "services/common/backend_channel.h"
#include "services/gateway/worker_discovery.h"

namespace glm4v {

WorkerPool::Worker::Worker(std::string address_in, const Options& options)
    : address(std::move(address_in)),
      channel(CreateBackendChannel(address)),
      stub(internal::DecoderWorker::NewStub(channel)),
      prefix(options.prefix_ttl, options.prefix_max_blocks) {}

WorkerPool::WorkerPool(Options options, const GatewayMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& address : options_.addresses) AddLocked(address);
  }
  if (!options_.discovery.empty()) Rediscover();
  poller_ = std::thread([this]() { PollLoop(); });
}

WorkerPool::~WorkerPool() {
  stop_.Notify();
  poller_.join();
}

bool WorkerPool::AddLocked(const std::string& address) {
  for (const auto& w : workers_) {
    if (w->address == address) {
      if (w->leaving.exchange(false)) LOG_INFO("worker rejoined").With("address", address);
      return false;
    }
  }
  workers_.push_back(std::make_shared<Worker>(address, options_));
  if (metrics_ != nullptr) metrics_->backend_up->WithLabels({"worker", address}).Set(1);
  return true;
}

void WorkerPool::SetUpGauge(const Worker& worker, bool up) {
  if (metrics_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  // Only members have a series: a dropped worker's series is gone from the exposition.
  for (const auto& w : workers_) {
    if (w.get() == &worker) metrics_->backend_up->WithLabels({"worker", worker.address}).Set(up);
  }
}

void WorkerPool::Rediscover() {
  absl::StatusOr<std::vector<std::string>> found = DiscoverWorkers(options_.discovery);
  if (!found.ok()) {
    LOG_WARN("worker discovery failed; keeping the current workers")
        .With("spec", options_.discovery)
        .With("error", found.status());
    return;
  }
  if (found->empty()) {
    // Draining every worker on an empty answer would fail all traffic on a discovery glitch.
    LOG_WARN("worker discovery found no worker; keeping the current workers")
        .With("spec", options_.discovery);
    return;
  }
  const std::set<std::string> listed(found->begin(), found->end());
  absl::MutexLock lock(&mu_);
  for (const std::string& address : listed) {
    if (AddLocked(address)) LOG_INFO("worker discovered").With("address", address);
  }
  for (auto it = workers_.begin(); it != workers_.end();) {
    Worker& w = **it;
    if (listed.count(w.address) > 0) {
      ++it;
      continue;
    }
    if (!w.leaving.exchange(true)) {
      LOG_INFO("worker left discovery; draining").With("address", w.address);
    }
    if (w.open_streams.load() > 0) {
      ++it;
      continue;
    }
    LOG_INFO("worker removed").With("address", w.address);
    if (metrics_ != nullptr) metrics_->backend_up->Remove({"worker", w.address});
    it = workers_.erase(it);
  }
}

void WorkerPool::PollLoop() {
  do {
    if (!options_.discovery.empty()) Rediscover();
    for (const std::shared_ptr<Worker>& worker : Members()) {
      Probe(worker.get());
      worker->prefix.Prune(absl::Now());
    }
  } while (!stop_.WaitForNotificationWithTimeout(options_.poll_interval));
}

void WorkerPool::Probe(Worker* worker) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  internal::StatsRequest request;
  internal::WorkerStats stats;
  grpc::Status status = worker->stub->GetStats(&context, request, &stats);
  // A worker that answers unhealthy/draining, or refuses the connection, is down at once. A
  // probe that merely times out (a saturated machine, a long prefill holding the CPU) is not
  // evidence of death: down only after kSlowProbesForDown in a row.
  bool up;
  if (status.ok()) {
    worker->failed_probes = 0;
    up = stats.healthy();
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
             ++worker->failed_probes < kSlowProbesForDown) {
    up = worker->up.load();
  } else {
    up = false;
  }
  if (status.ok()) {
    worker->reported_load = static_cast<int>(stats.running() + stats.waiting());
    worker->max_model_len = static_cast<int>(stats.max_model_len());
    worker->kv_block_size = static_cast<int>(stats.kv_block_size());
    worker->kv_usage = stats.kv_blocks_total() > 0
                           ? static_cast<double>(stats.kv_blocks_used()) / stats.kv_blocks_total()
                           : 0.0;
  }
  const bool was_up = worker->up.exchange(up);
  if (was_up != up) {
    if (up) {
      LOG_INFO("worker up").With("address", worker->address);
    } else {
      worker->prefix.Clear();  // whatever it held is gone if it restarts
      LOG_WARN("worker down")
          .With("address", worker->address)
          .With("error",
                status.ok() ? std::string("unhealthy or draining") : status.error_message());
    }
  }
  SetUpGauge(*worker, up);
}

std::vector<std::shared_ptr<WorkerPool::Worker>> WorkerPool::Members() const {
  absl::MutexLock lock(&mu_);
  return workers_;
}

size_t WorkerPool::size() const {
  absl::MutexLock lock(&mu_);
  return workers_.size();
}

int WorkerPool::MaxModelLen() const {
  int smallest = 0;
  for (const auto& worker : Members()) {
    if (worker->leaving) continue;
    const int len = worker->max_model_len.load();
    if (len > 0 && (smallest == 0 || len < smallest)) smallest = len;
  }
  return smallest;
}

absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> WorkerPool::Pick(PromptBlocks* prompt,
                                                                     uint64_t affinity,
                                                                     const Worker* exclude) {
  const std::vector<std::shared_ptr<Worker>> members = Members();
  std::vector<std::shared_ptr<Worker>> candidates;
  for (const auto& w : members) {
    if (w->up && !w->leaving && w.get() != exclude) candidates.push_back(w);
  }
  if (candidates.empty()) {
    std::vector<std::string> addresses;
    for (const auto& w : members) addresses.push_back(w->address);
    return absl::UnavailableError(absl::StrCat("no decoder worker is available (",
                                               addresses.empty() ? std::string("none known")
                                                                 : absl::StrJoin(addresses, ", "),
                                               ")"));
  }
  const RoutingOptions& routing = options_.routing;
  if (routing.policy == RoutingPolicy::kAffinityHash || prompt == nullptr) {
    auto least = std::min_element(candidates.begin(), candidates.end(),
                                  [](const auto& a, const auto& b) { return a->load() < b->load(); });
    const std::shared_ptr<Worker>& home = candidates[affinity % candidates.size()];
    if (home->load() <= (*least)->load() + routing.affinity_slack) return home;
    return *least;
  }
  const absl::Time now = absl::Now();
  std::vector<RoutingCandidate> scored(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Worker& w = *candidates[i];
    const int block = w.block_tokens();
    scored[i].load = w.load();
    scored[i].kv_usage = w.kv_usage.load();
    scored[i].cached_rows = w.prefix.MatchedBlocks(prompt->Hashes(block), now) * block;
  }
  const std::shared_ptr<Worker>& chosen =
      candidates[ChooseCacheAware(scored, prompt->rows(), routing)];
  chosen->prefix.Record(prompt->Hashes(chosen->block_tokens()), now);
  return chosen;
}

void WorkerPool::MarkDown(Worker* worker) {
  worker->up = false;
  worker->prefix.Clear();
  SetUpGauge(*worker, false);
}

}  // namespace glm4v
