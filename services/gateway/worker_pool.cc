#include "services/gateway/worker_pool.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "grpcpp/client_context.h"
#include "services/common/backend_channel.h"

namespace glm4v {

WorkerPool::WorkerPool(const std::vector<std::string>& addresses, const GatewayMetrics* metrics,
                       absl::Duration poll_interval) {
  for (const std::string& address : addresses) {
    auto worker = std::make_unique<Worker>();
    worker->address = address;
    worker->channel = CreateBackendChannel(address);
    worker->stub = internal::DecoderWorker::NewStub(worker->channel);
    if (metrics != nullptr) {
      worker->up_gauge = &metrics->backend_up->WithLabels({"worker", address});
      worker->up_gauge->Set(1);
    }
    workers_.push_back(std::move(worker));
  }
  poller_ = std::thread([this, poll_interval]() { PollLoop(poll_interval); });
}

WorkerPool::~WorkerPool() {
  stop_.Notify();
  poller_.join();
}

void WorkerPool::PollLoop(absl::Duration interval) {
  do {
    for (auto& worker : workers_) Probe(worker.get());
  } while (!stop_.WaitForNotificationWithTimeout(interval));
}

void WorkerPool::Probe(Worker* worker) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  internal::StatsRequest request;
  internal::WorkerStats stats;
  grpc::Status status = worker->stub->GetStats(&context, request, &stats);
  const bool up = status.ok() && stats.healthy();
  if (status.ok()) {
    worker->reported_load = static_cast<int>(stats.running() + stats.waiting());
    worker->max_model_len = static_cast<int>(stats.max_model_len());
  }
  const bool was_up = worker->up.exchange(up);
  if (was_up != up) {
    if (up) {
      LOG_INFO("worker up").With("address", worker->address);
    } else {
      LOG_WARN("worker down")
          .With("address", worker->address)
          .With("error",
                status.ok() ? std::string("unhealthy or draining") : status.error_message());
    }
  }
  if (worker->up_gauge != nullptr) worker->up_gauge->Set(up ? 1 : 0);
}

int WorkerPool::MaxModelLen() const {
  int smallest = 0;
  for (const auto& worker : workers_) {
    const int len = worker->max_model_len.load();
    if (len > 0 && (smallest == 0 || len < smallest)) smallest = len;
  }
  return smallest;
}

absl::StatusOr<WorkerPool::Worker*> WorkerPool::Pick(uint64_t affinity, const Worker* exclude) {
  Worker* best = nullptr;
  int best_load = std::numeric_limits<int>::max();
  for (auto& worker : workers_) {
    if (!worker->up || worker.get() == exclude) continue;
    const int load = worker->load();
    if (load < best_load) {
      best = worker.get();
      best_load = load;
    }
  }
  if (best == nullptr) {
    std::vector<std::string> addresses;
    for (const auto& worker : workers_) addresses.push_back(worker->address);
    return absl::UnavailableError(
        absl::StrCat("no decoder worker is available (", absl::StrJoin(addresses, ", "), ")"));
  }
  Worker* home = workers_[affinity % workers_.size()].get();
  if (home->up && home != exclude && home->load() <= best_load + kAffinitySlack) return home;
  return best;
}

void WorkerPool::MarkDown(Worker* worker) {
  worker->up = false;
  if (worker->up_gauge != nullptr) worker->up_gauge->Set(0);
}

}  // namespace glm4v
