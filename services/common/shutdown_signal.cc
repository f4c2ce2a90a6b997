#include "services/common/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace glm4v {
namespace {

absl::Mutex g_mu(absl::kConstInit);
bool g_fired ABSL_GUARDED_BY(g_mu) = false;
int g_signal ABSL_GUARDED_BY(g_mu) = 0;
int g_pipe[2] = {-1, -1};

void Fire(int signo) {
  absl::MutexLock lock(&g_mu);
  if (g_fired) return;
  g_fired = true;
  g_signal = signo;
}

void OnSignal(int signo) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  // Nothing to do if the pipe is full: a shutdown is already pending.
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
  errno = saved_errno;
}

}  // namespace

void ShutdownSignal::Install() {
  signal(SIGPIPE, SIG_IGN);
  if (g_pipe[0] >= 0) return;
  if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
  fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
  std::thread([]() {
    unsigned char byte = 0;
    while (true) {
      ssize_t n = read(g_pipe[0], &byte, 1);
      if (n == 1) break;
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    Fire(byte);
  }).detach();
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int ShutdownSignal::Wait() {
  absl::MutexLock lock(&g_mu);
  g_mu.Await(absl::Condition(&g_fired));
  return g_signal;
}

bool ShutdownSignal::WaitFor(absl::Duration timeout, int* signo) {
  absl::MutexLock lock(&g_mu);
  if (!g_mu.AwaitWithTimeout(absl::Condition(&g_fired), timeout)) return false;
  if (signo != nullptr) *signo = g_signal;
  return true;
}

void ShutdownSignal::Trigger() { Fire(0); }

}  // namespace glm4v
