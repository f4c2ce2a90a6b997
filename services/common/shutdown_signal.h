// SIGTERM / SIGINT as an event a thread can wait for.
//
// Install() (top of main) sets handlers that only write the signal number to a self-pipe
// (async-signal-safe); a watcher thread reads it and wakes Wait(). A handler is used rather
// than blocking the signals for sigwait(): libraries such as OpenBLAS start threads from static
// initializers, before main(), and those would otherwise take the default (fatal) action.
// SIGPIPE is ignored.
#pragma once

#include "absl/time/time.h"

namespace glm4v {

class ShutdownSignal {
 public:
  static void Install();

  // Blocks until SIGTERM or SIGINT arrives (or Trigger() is called); returns the signal number
  // (0 for Trigger()). Later calls return at once.
  static int Wait();
  // Like Wait() but gives up after `timeout`: true (and the signal in *signo) once fired.
  static bool WaitFor(absl::Duration timeout, int* signo);
  // Programmatic shutdown (tests, fatal errors in a service thread).
  static void Trigger();
};

}  // namespace glm4v
