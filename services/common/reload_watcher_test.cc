#include "services/common/reload_watcher.h"

#include <signal.h>

#include <atomic>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(ReloadWatcherTest, PollsAndReloadsAtOnceOnSighup) {
  ReloadWatcher::InstallSighupHandler();
  std::atomic<int> polls{0}, sighups{0};
  {
    ReloadWatcher watcher(absl::Milliseconds(200), [&](bool sighup) {
      (sighup ? sighups : polls).fetch_add(1);
    });
    absl::SleepFor(absl::Milliseconds(700));
    EXPECT_GE(polls.load(), 2);
    EXPECT_LE(polls.load(), 4);
    EXPECT_EQ(sighups.load(), 0);
    // The signal does not kill the process; the watcher sees it within its signal latency.
    const int before = ReloadWatcher::SighupCount();
    ASSERT_EQ(::raise(SIGHUP), 0);
    EXPECT_EQ(ReloadWatcher::SighupCount(), before + 1);
    for (int i = 0; i < 50 && sighups.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
    EXPECT_EQ(sighups.load(), 1);
  }
  // Destroyed: the thread stopped, no more calls.
  const int after = polls.load();
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(polls.load(), after);
}

}  // namespace
}  // namespace glm4v
