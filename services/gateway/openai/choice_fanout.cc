#include "services/gateway/openai/choice_fanout.h"

#include <algorithm>
#include <utility>

namespace glm4v::openai {

ChoiceFanout::ChoiceFanout(glm4v::v1::Glm4vService::StubInterface* stub,
                           std::vector<glm4v::v1::GenerateRequest> requests, int n,
                           const Metadata& metadata)
    : stub_(stub), requests_(std::move(requests)), n_(std::max(1, n)) {
  for (size_t i = 0; i < requests_.size(); ++i) {
    contexts_.push_back(std::make_unique<grpc::ClientContext>());
    for (const auto& [key, value] : metadata) contexts_.back()->AddMetadata(key, value);
  }
  {
    absl::MutexLock lock(&mu_);
    leader_started_.assign((requests_.size() + n_ - 1) / n_, false);
  }
  for (int i = 0; i < num_choices(); ++i) readers_.emplace_back([this, i] { RunChoice(i); });
}

ChoiceFanout::~ChoiceFanout() { Cancel(); }

void ChoiceFanout::RunChoice(int choice) {
  const int prompt = choice / n_;
  const bool leader = choice % n_ == 0;
  auto push = [this](Event event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
    ready_.Signal();
  };
  auto mark_started = [this, prompt] {
    absl::MutexLock lock(&mu_);
    leader_started_[prompt] = true;
    started_.SignalAll();
  };
  if (!leader) {
    absl::MutexLock lock(&mu_);
    while (!leader_started_[prompt] && !cancelled_) started_.Wait(&mu_);
    if (cancelled_) {
      events_.push_back({choice, true, {}, grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")});
      ready_.Signal();
      return;
    }
  }
  grpc::ClientContext* context = contexts_[choice].get();
  auto reader = stub_->GenerateStream(context, requests_[choice]);
  Event event;
  event.choice = choice;
  bool first = true;
  while (reader->Read(&event.message)) {
    push(event);
    if (first && leader) mark_started();
    first = false;
  }
  if (first && leader) mark_started();
  push({choice, true, {}, reader->Finish()});
}

bool ChoiceFanout::Next(absl::Duration timeout, Event* event) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (events_.empty()) {
    if (ready_.WaitWithDeadline(&mu_, deadline) && events_.empty()) return false;
  }
  *event = std::move(events_.front());
  events_.pop_front();
  return true;
}

void ChoiceFanout::Cancel() {
  absl::MutexLock cancel_lock(&cancel_mu_);
  if (joined_) return;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    started_.SignalAll();  // followers waiting for their prompt's first choice
  }
  // (a context cancelled before its call starts cancels the call as it starts)
  for (auto& context : contexts_) context->TryCancel();
  for (std::thread& reader : readers_) reader.join();
  joined_ = true;
}

}  // namespace glm4v::openai
