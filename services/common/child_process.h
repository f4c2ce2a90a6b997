// A child process started from an argv: the launcher and the integration tests run the real
// service binaries with it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace glm4v {

class ChildProcess {
 public:
  struct Options {
    // When set, the child's stdout and stderr are appended to this file (else inherited).
    std::string log_path;
    // The child gets SIGKILL if this (parent) thread's process dies first (PR_SET_PDEATHSIG).
    bool die_with_parent = true;
  };

  // argv[0] is the executable path (not searched in $PATH).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const Options& options);
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv) {
    return Start(argv, Options());
  }

  // Kills (SIGKILL) and reaps a child that is still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // Sends `signo` if the child has not been reaped yet.
  void Signal(int signo);
  // Reaps without blocking; true once the child has exited.
  bool Poll();
  // Waits until the child exits or `timeout` passes; true if it exited.
  bool WaitFor(absl::Duration timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status.
  int Stop(absl::Duration grace);

  bool exited() const { return exited_; }
  // Raw wait status (valid once exited()).
  int wait_status() const { return wait_status_; }
  // "exit code 3" / "killed by signal 9".
  std::string DescribeExit() const;
  // 0 when the child exited normally with code 0.
  bool succeeded() const;

 private:
  ChildProcess(pid_t pid, std::string name) : pid_(pid), name_(std::move(name)) {}

  pid_t pid_;
  std::string name_;
  bool exited_ = false;
  int wait_status_ = 0;
};

}  // namespace glm4v
