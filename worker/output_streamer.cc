#include "worker/output_streamer.h"

#include <utility>

namespace glm4v::worker {

OutputStreamer::OutputStreamer() : thread_([this] { Run(); }) {}

OutputStreamer::~OutputStreamer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void OutputStreamer::Deliver(std::vector<Item> items) {
  if (items.empty()) return;
  absl::MutexLock lock(&mu_);
  queued_ += static_cast<int64_t>(items.size());
  for (Item& item : items) queue_.push_back(std::move(item));
}

void OutputStreamer::Flush() {
  absl::MutexLock lock(&mu_);
  const int64_t target = queued_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return delivered_ >= target; };
  mu_.Await(absl::Condition(&done));
}

void OutputStreamer::Run() {
  std::deque<Item> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stop_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      batch.swap(queue_);
    }
    const int64_t count = static_cast<int64_t>(batch.size());
    for (Item& item : batch) {
      if (item.error.ok()) {
        item.stream->Push(std::move(item.event));
      } else {
        item.stream->Fail(std::move(item.error));
      }
    }
    batch.clear();
    absl::MutexLock lock(&mu_);
    delivered_ += count;
  }
}

}  // namespace glm4v::worker
