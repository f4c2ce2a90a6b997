#include "services/common/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace glm4v {
namespace {

// Binds 127.0.0.1:port (0: the kernel's choice); the bound port, or an error.
absl::StatusOr<int> BindAndRelease(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("bind: ", strerror(err)));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// True the first time this process sees `port`.
bool Remember(int port) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* given = new absl::flat_hash_set<int>();
  absl::MutexLock lock(&mu);
  return given->insert(port).second;
}

int EphemeralRangeStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 0, hi = 0;
  if (in >> lo >> hi && lo > 0) return lo;
  return 32768;  // Linux's default
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  constexpr int kLowest = 10000;  // above the well-known and commonly configured ports
  static const int top = EphemeralRangeStart();
  // Different processes (tests run side by side) start at different points of the range.
  static std::atomic<uint64_t> state{
      static_cast<uint64_t>(getpid()) * 0x9e3779b97f4a7c15ull ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  if (top - kLowest >= 1000) {
    for (int attempt = 0; attempt < 256; ++attempt) {
      uint64_t x = state.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
      x = (x ^ (x >> 31)) * 0xbf58476d1ce4e5b9ull;
      x ^= x >> 29;
      const int port = kLowest + static_cast<int>(x % static_cast<uint64_t>(top - kLowest));
      // A port handed out earlier may not be bound yet by whoever got it.
      if (!Remember(port)) continue;
      absl::StatusOr<int> bound = BindAndRelease(port);
      if (bound.ok()) return *bound;
    }
  }
  return BindAndRelease(0);
}

}  // namespace glm4v
