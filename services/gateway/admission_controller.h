// Bounded admission: at most max_inflight requests are processed at once, at most max_queue
// wait for a slot, and anything beyond is refused at once (RESOURCE_EXHAUSTED) instead of piling
// up latency for everyone.
#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace glm4v {

class AdmissionController {
 public:
  class Slot {
   public:
    explicit Slot(AdmissionController* owner) : owner_(owner) {}
    Slot(Slot&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (owner_ != nullptr) owner_->Release();
    }

   private:
    AdmissionController* owner_;
  };

  AdmissionController(int max_inflight, int max_queue)
      : max_inflight_(max_inflight), max_queue_(max_queue) {}

  // RESOURCE_EXHAUSTED when the queue is full; DEADLINE_EXCEEDED if no slot freed up by
  // `deadline`; CANCELLED if `cancelled` turns true while waiting (polled).
  absl::StatusOr<Slot> Admit(absl::Time deadline, const std::function<bool()>& cancelled);

  int inflight() const;
  int waiting() const;

 private:
  void Release();

  const int max_inflight_;
  const int max_queue_;
  mutable absl::Mutex mu_;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace glm4v
