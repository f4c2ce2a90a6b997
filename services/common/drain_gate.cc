#include "services/common/drain_gate.h"

namespace glm4v {

std::optional<DrainGate::Ticket> DrainGate::TryEnter() {
  absl::MutexLock lock(&mu_);
  if (draining_) return std::nullopt;
  ++inflight_;
  return std::optional<Ticket>(std::in_place, this);
}

void DrainGate::Leave() {
  absl::MutexLock lock(&mu_);
  --inflight_;
}

void DrainGate::StartDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool DrainGate::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

int DrainGate::inflight() const {
  absl::MutexLock lock(&mu_);
  return inflight_;
}

bool DrainGate::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

}  // namespace glm4v
