// Small POSIX TCP helpers for the host communicator: address parsing, non-blocking sockets,
// connect/accept/read/write bounded by a deadline. IPv4 only (loopback and LAN).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace glm4v::comm {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct HostPort {
  std::string host;
  int port = 0;
};

// Parses "host:port" (port 0..65535; 0 = any free port when listening).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// Resolves to an IPv4 socket address (dotted quad directly, names via getaddrinfo).
absl::StatusOr<sockaddr_in> ResolveIpv4(const HostPort& address);

// "a.b.c.d:port".
std::string FormatSockaddr(const sockaddr_in& addr);

// Non-blocking listening socket bound to `addr` (SO_REUSEADDR).
absl::StatusOr<UniqueFd> ListenOn(const sockaddr_in& addr, int backlog);

// The address a socket is bound to (getsockname) or connected to (getpeername).
absl::StatusOr<sockaddr_in> LocalAddress(int fd);
absl::StatusOr<sockaddr_in> PeerAddress(int fd);

// Connects (non-blocking socket, TCP_NODELAY), retrying refused/unreachable attempts until
// `deadline` so that a rank may start before the one it connects to. `what` names the target.
absl::StatusOr<UniqueFd> ConnectBefore(const sockaddr_in& addr, absl::Time deadline,
                                       absl::string_view what);

// Accepts one connection (returned non-blocking, TCP_NODELAY) or DEADLINE_EXCEEDED.
absl::StatusOr<UniqueFd> AcceptBefore(int listen_fd, absl::Time deadline);

// Writes / reads exactly `size` bytes on a non-blocking socket, handling partial transfers and
// EINTR. Peer close -> UNAVAILABLE, deadline -> DEADLINE_EXCEEDED; `what` names the peer.
absl::Status WriteAllBefore(int fd, const void* data, size_t size, absl::Time deadline,
                            absl::string_view what);
absl::Status ReadAllBefore(int fd, void* data, size_t size, absl::Time deadline,
                           absl::string_view what);

// Milliseconds until `deadline` for poll(): >= 0, rounded up, capped to int.
int PollTimeoutMs(absl::Time deadline);

std::string ErrnoMessage(int err);

}  // namespace glm4v::comm
