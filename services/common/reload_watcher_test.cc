#include "services/common/reload_watcher.h"

#include <signal.h>

#include <atomic>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(ReloadWatcherTest, PollsEveryInterval) {
  std::atomic<int> calls{0};
  {
    ReloadWatcher watcher(absl::Milliseconds(200), [&] { calls.fetch_add(1); });
    absl::SleepFor(absl::Milliseconds(700));
    EXPECT_GE(calls.load(), 2);
    EXPECT_LE(calls.load(), 4);
  }
  // Destroyed: the thread stopped, no more calls.
  const int after = calls.load();
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(calls.load(), after);
}

TEST(ReloadWatcherTest, SighupReloadsAtOnce) {
  ReloadWatcher::InstallSighupHandler();
  std::atomic<int> calls{0};
  ReloadWatcher watcher(absl::Hours(1), [&] { calls.fetch_add(1); });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(calls.load(), 0);  // no poll due for an hour
  // The signal does not kill the process; the watcher sees it within its signal latency.
  const int before = ReloadWatcher::SighupCount();
  ASSERT_EQ(::raise(SIGHUP), 0);
  EXPECT_EQ(ReloadWatcher::SighupCount(), before + 1);
  for (int i = 0; i < 50 && calls.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace glm4v
