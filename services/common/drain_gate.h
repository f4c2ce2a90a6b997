// Admission gate for graceful shutdown: RPC handlers enter it, and once draining starts new
// entries are refused while the ones already inside are waited for.
#pragma once

#include <optional>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace glm4v {

class DrainGate {
 public:
  // Held by one in-flight request; leaving the scope leaves the gate.
  class Ticket {
   public:
    explicit Ticket(DrainGate* gate) : gate_(gate) {}
    Ticket(Ticket&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket() {
      if (gate_ != nullptr) gate_->Leave();
    }

   private:
    DrainGate* gate_;
  };

  // nullopt once draining has started: the caller answers UNAVAILABLE.
  std::optional<Ticket> TryEnter();

  void StartDrain();
  bool draining() const;
  int inflight() const;

  // Blocks until nothing is inside or `deadline` passes; true when idle.
  bool WaitIdle(absl::Time deadline);

 private:
  void Leave();

  mutable absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace glm4v
