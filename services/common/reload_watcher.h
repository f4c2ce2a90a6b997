// Re-reads configuration files (API keys, TLS certificates) while a process runs: on SIGHUP
// and, as a Kubernetes Secret update gives no signal, by polling every `interval`.
//
//   ReloadWatcher::InstallSighupHandler();  // top of main, before threads start
//   ReloadWatcher watcher(absl::Seconds(1), [&] { store->ReloadIfChanged(); ... });
//
// The callback runs on the watcher's thread, every `interval` and at once after a SIGHUP; it
// reloads whatever changed.
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace glm4v {

class ReloadWatcher {
 public:
  // The handler only bumps a counter (async-signal-safe); without it SIGHUP terminates.
  static void InstallSighupHandler();
  // SIGHUPs received so far.
  static int SighupCount();

  ReloadWatcher(absl::Duration interval, std::function<void()> reload);
  ~ReloadWatcher();  // stops and joins the thread
  ReloadWatcher(const ReloadWatcher&) = delete;
  ReloadWatcher& operator=(const ReloadWatcher&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace glm4v
