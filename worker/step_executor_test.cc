#include "worker/step_executor.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v::worker {
namespace {

TEST(StepExecutorTest, RunsStepsInOrderOnItsBoundThread) {
  std::thread::id bound_on;
  StepExecutor executor([&] { bound_on = std::this_thread::get_id(); });
  executor.Wait();  // nothing launched: returns at once
  std::vector<int> ran;
  std::vector<std::thread::id> threads;
  for (int i = 0; i < 50; ++i) {
    executor.Launch([&, i] {
      ran.push_back(i);
      threads.push_back(std::this_thread::get_id());
    });
    executor.Wait();
  }
  ASSERT_EQ(ran.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(ran[i], i);
    EXPECT_EQ(threads[i], bound_on);  // bind ran first, on the thread that runs the steps
  }
  EXPECT_NE(bound_on, std::this_thread::get_id());
}

TEST(StepExecutorTest, TheCallerWorksWhileAStepRuns) {
  StepExecutor executor;
  absl::Notification release, started;
  std::atomic<bool> done{false};
  executor.Launch([&] {
    started.Notify();
    release.WaitForNotification();
    done = true;
  });
  started.WaitForNotification();
  EXPECT_FALSE(done);  // Launch returned while the step is still running
  release.Notify();
  executor.Wait();
  EXPECT_TRUE(done);
}

TEST(StepExecutorTest, DestructionWaitsForTheLaunchedStep) {
  std::atomic<bool> done{false};
  {
    StepExecutor executor;
    executor.Launch([&] {
      absl::SleepFor(absl::Milliseconds(20));
      done = true;
    });
  }
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace glm4v::worker
