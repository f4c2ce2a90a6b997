#include "services/common/reload_watcher.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <utility>

namespace glm4v {
namespace {

std::atomic<int> sighup_count{0};

void OnSighup(int) { sighup_count.fetch_add(1, std::memory_order_relaxed); }

// SIGHUP is noticed within this, even when the poll interval is long.
constexpr absl::Duration kSignalLatency = absl::Milliseconds(100);

}  // namespace

void ReloadWatcher::InstallSighupHandler() {
  struct sigaction action = {};
  action.sa_handler = OnSighup;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &action, nullptr);
}

int ReloadWatcher::SighupCount() { return sighup_count.load(std::memory_order_relaxed); }

ReloadWatcher::ReloadWatcher(absl::Duration interval, std::function<void()> reload) {
  thread_ = std::thread([this, interval, reload = std::move(reload)] {
    int seen = SighupCount();
    absl::Time next_poll = absl::Now() + interval;
    while (!stop_.WaitForNotificationWithTimeout(std::min(kSignalLatency, interval))) {
      const int count = SighupCount();
      if (count != seen || absl::Now() >= next_poll) {
        seen = count;
        reload();
        next_poll = absl::Now() + interval;
      }
    }
  });
}

ReloadWatcher::~ReloadWatcher() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace glm4v
