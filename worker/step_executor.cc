#include "worker/step_executor.h"

#include <cassert>
#include <utility>

namespace glm4v::worker {

StepExecutor::StepExecutor(std::function<void()> bind_thread)
    : thread_([this, bind = std::move(bind_thread)]() mutable { Run(std::move(bind)); }) {}

StepExecutor::~StepExecutor() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &StepExecutor::Idle));
    stop_ = true;
  }
  thread_.join();
}

void StepExecutor::Launch(std::function<void()> step) {
  absl::MutexLock lock(&mu_);
  assert(!running_);
  step_ = std::move(step);
  running_ = true;
}

void StepExecutor::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &StepExecutor::Idle));
}

void StepExecutor::Run(std::function<void()> bind_thread) {
  if (bind_thread) bind_thread();
  while (true) {
    std::function<void()> step;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &StepExecutor::HasWork));
      if (step_ == nullptr) return;  // stop_
      step = std::move(step_);
      step_ = nullptr;
    }
    step();
    absl::MutexLock lock(&mu_);
    running_ = false;
  }
}

}  // namespace glm4v::worker
