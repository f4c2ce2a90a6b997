// Runs the engine's model steps on a thread of its own, one at a time, so the engine thread can
// schedule step N+1 and stream step N-1's tokens while step N computes (the overlap scheduling of
// SGLang and vLLM v1). With a GPU runner the thread mostly waits on the device; with the CPU
// backend it drives the CPU pool.
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace glm4v::worker {

class StepExecutor {
 public:
  // `bind_thread` runs once on the executor thread before any step (e.g. makes the runner's
  // device current there).
  explicit StepExecutor(std::function<void()> bind_thread = nullptr);
  // Waits for a launched step, then stops the thread.
  ~StepExecutor();
  StepExecutor(const StepExecutor&) = delete;
  StepExecutor& operator=(const StepExecutor&) = delete;

  // Starts `step` on the executor thread. At most one step is in flight: Wait for it first.
  void Launch(std::function<void()> step);
  // Returns once the launched step has finished (at once when none was launched).
  void Wait();

 private:
  void Run(std::function<void()> bind_thread);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || step_ != nullptr; }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !running_; }

  absl::Mutex mu_;
  std::function<void()> step_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // a step is launched and not finished
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace glm4v::worker
