#include "services/gateway/admission_controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace glm4v {

absl::StatusOr<AdmissionController::Slot> AdmissionController::Admit(
    absl::Time deadline, const std::function<bool()>& cancelled) {
  absl::MutexLock lock(&mu_);
  auto has_slot = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inflight_ < max_inflight_; };
  if (!has_slot()) {
    if (waiting_ >= max_queue_) {
      return absl::ResourceExhaustedError(absl::StrCat("server overloaded: ", inflight_,
                                                       " requests in flight and ", waiting_,
                                                       " queued; retry later"));
    }
    ++waiting_;
    while (!has_slot()) {
      const absl::Time wake = std::min(deadline, absl::Now() + absl::Milliseconds(20));
      mu_.AwaitWithDeadline(absl::Condition(&has_slot), wake);
      if (has_slot()) break;
      if (absl::Now() >= deadline) {
        --waiting_;
        return absl::DeadlineExceededError("deadline passed while queued for admission");
      }
      if (cancelled && cancelled()) {
        --waiting_;
        return absl::CancelledError("request cancelled while queued for admission");
      }
    }
    --waiting_;
  }
  ++inflight_;
  return Slot(this);
}

void AdmissionController::Release() {
  absl::MutexLock lock(&mu_);
  --inflight_;
}

int AdmissionController::inflight() const {
  absl::MutexLock lock(&mu_);
  return inflight_;
}

int AdmissionController::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace glm4v
