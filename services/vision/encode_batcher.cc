#include "services/vision/encode_batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace glm4v {

EncodeBatcher::EncodeBatcher(Options options, EncodeFn encode, Metrics metrics)
    : options_(options), encode_(std::move(encode)), metrics_(metrics) {
  thread_ = std::thread([this]() { Loop(); });
}

EncodeBatcher::~EncodeBatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::StatusOr<std::vector<Tensor>> EncodeBatcher::Encode(std::vector<PixelTensor> images,
                                                          absl::Time deadline) {
  std::vector<std::shared_ptr<Pending>> mine;
  const absl::Time now = absl::Now();
  for (PixelTensor& pixels : images) {
    auto pending = std::make_shared<Pending>();
    pending->pixels = std::move(pixels);
    pending->enqueued = now;
    mine.push_back(std::move(pending));
  }
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("vision encoder is shutting down");
  if (queue_.size() + mine.size() > static_cast<size_t>(options_.max_queue)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("vision encode queue is full (", options_.max_queue, " images)"));
  }
  for (const auto& pending : mine) queue_.push_back(pending);
  UpdateQueueDepth();
  auto all_done = [&mine]() {
    for (const auto& pending : mine) {
      if (!pending->done) return false;
    }
    return true;
  };
  if (!mu_.AwaitWithDeadline(absl::Condition(&all_done), deadline)) {
    for (const auto& pending : mine) pending->abandoned = true;
    return absl::DeadlineExceededError("deadline passed while the images waited to be encoded");
  }
  std::vector<Tensor> out;
  out.reserve(mine.size());
  for (const auto& pending : mine) {
    if (!pending->result.ok()) return pending->result.status();
    out.push_back(std::move(*pending->result));
  }
  return out;
}

void EncodeBatcher::UpdateQueueDepth() {
  if (metrics_.queue_depth != nullptr) metrics_.queue_depth->Set(queue_.size());
}

void EncodeBatcher::Loop() {
  while (true) {
    std::vector<std::shared_ptr<Pending>> batch;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&has_work));
      if (stop_) {
        for (auto& pending : queue_) {
          pending->result = absl::UnavailableError("vision encoder is shutting down");
          pending->done = true;
        }
        queue_.clear();
        UpdateQueueDepth();
        return;
      }
      // Give later requests until max_wait after the oldest one arrived to join its batch.
      auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || static_cast<int>(queue_.size()) >= options_.max_batch;
      };
      mu_.AwaitWithDeadline(absl::Condition(&full), queue_.front()->enqueued + options_.max_wait);
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        std::shared_ptr<Pending> pending = std::move(queue_.front());
        queue_.pop_front();
        if (!pending->abandoned) batch.push_back(std::move(pending));
      }
      UpdateQueueDepth();
    }
    if (batch.empty()) continue;

    std::vector<const PixelTensor*> inputs;
    inputs.reserve(batch.size());
    for (const auto& pending : batch) inputs.push_back(&pending->pixels);
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<Tensor>> outputs = encode_(inputs);
    if (metrics_.encode_seconds != nullptr) {
      metrics_.encode_seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    }
    if (metrics_.batch_size != nullptr) metrics_.batch_size->Observe(batch.size());
    if (outputs.ok() && outputs->size() != batch.size()) {
      outputs = absl::InternalError(absl::StrCat("vision tower returned ", outputs->size(),
                                                 " results for ", batch.size(), " images"));
    }

    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (outputs.ok()) {
        batch[i]->result = std::move((*outputs)[i]);
      } else {
        batch[i]->result = outputs.status();
      }
      batch[i]->done = true;
    }
  }
}

}  // namespace glm4v
