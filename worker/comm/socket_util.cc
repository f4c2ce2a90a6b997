#include "worker/comm/socket_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace glm4v::comm {
namespace {

absl::Status SetSocketOptions(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return absl::InternalError("fcntl(O_NONBLOCK): " + ErrnoMessage(errno));
  }
  // Collectives are latency-bound at decode sizes; never let Nagle hold back a small message.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> NewTcpSocket() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket(): " + ErrnoMessage(errno));
  UniqueFd owned(fd);
  absl::Status st = SetSocketOptions(fd);
  if (!st.ok()) return st;
  return owned;
}

// Waits for `events` on fd until deadline. Returns true if ready, false on timeout.
absl::StatusOr<bool> WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, PollTimeoutMs(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError("poll(): " + ErrnoMessage(errno));
    }
    if (n > 0) return true;
    if (absl::Now() >= deadline) return false;
  }
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

std::string ErrnoMessage(int err) {
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
  const char* msg = strerror_r(err, buf, sizeof(buf));
  return absl::StrFormat("%s (errno %d)", msg, err);
}

int PollTimeoutMs(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                               : static_cast<int>(ms);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad address \"%s\": expected host:port", address));
  }
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad address \"%s\": port must be an integer in [0, 65535]", address));
  }
  return HostPort{std::string(address.substr(0, colon)), port};
}

absl::StatusOr<sockaddr_in> ResolveIpv4(const HostPort& address) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(address.port));
  if (inet_pton(AF_INET, address.host.c_str(), &addr.sin_addr) == 1) return addr;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(address.host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot resolve host \"%s\" to an IPv4 address: %s", address.host, gai_strerror(rc)));
  }
  addr.sin_addr = reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr;
  freeaddrinfo(result);
  return addr;
}

std::string FormatSockaddr(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
  return absl::StrFormat("%s:%d", ip, ntohs(addr.sin_port));
}

absl::StatusOr<UniqueFd> ListenOn(const sockaddr_in& addr, int backlog) {
  absl::StatusOr<UniqueFd> fd = NewTcpSocket();
  if (!fd.ok()) return fd.status();
  int one = 1;
  setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd->get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0) {
    return absl::UnavailableError(
        absl::StrFormat("cannot bind %s: %s", FormatSockaddr(addr), ErrnoMessage(errno)));
  }
  if (listen(fd->get(), backlog) < 0) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s: %s", FormatSockaddr(addr), ErrnoMessage(errno)));
  }
  return fd;
}

absl::StatusOr<sockaddr_in> LocalAddress(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return absl::InternalError("getsockname(): " + ErrnoMessage(errno));
  }
  return addr;
}

absl::StatusOr<sockaddr_in> PeerAddress(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return absl::InternalError("getpeername(): " + ErrnoMessage(errno));
  }
  return addr;
}

absl::StatusOr<UniqueFd> ConnectBefore(const sockaddr_in& addr, absl::Time deadline,
                                       absl::string_view what) {
  int last_error = 0;
  while (true) {
    absl::StatusOr<UniqueFd> fd = NewTcpSocket();
    if (!fd.ok()) return fd.status();
    int rc = connect(fd->get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    if (rc == 0) return fd;
    if (errno == EINPROGRESS || errno == EINTR) {
      absl::StatusOr<bool> ready = WaitFor(fd->get(), POLLOUT, deadline);
      if (!ready.ok()) return ready.status();
      if (*ready) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) return fd;
        last_error = err;
      }
    } else {
      last_error = errno;
    }
    // Refused/unreachable: the target may not be listening yet; retry until the deadline.
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
    if (absl::Now() >= deadline) break;
  }
  return absl::UnavailableError(absl::StrFormat(
      "cannot connect to %s at %s before the deadline: %s", what, FormatSockaddr(addr),
      last_error != 0 ? ErrnoMessage(last_error) : std::string("timed out")));
}

absl::StatusOr<UniqueFd> AcceptBefore(int listen_fd, absl::Time deadline) {
  while (true) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      UniqueFd owned(fd);
      absl::Status st = SetSocketOptions(fd);
      if (!st.ok()) return st;
      return owned;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
      return absl::InternalError("accept(): " + ErrnoMessage(errno));
    }
    absl::StatusOr<bool> ready = WaitFor(listen_fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) return absl::DeadlineExceededError("no connection before the deadline");
  }
}

absl::Status WriteAllBefore(int fd, const void* data, size_t size, absl::Time deadline,
                            absl::string_view what) {
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = send(fd, p + done, size - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrFormat("%s: connection lost while sending: %s", what, ErrnoMessage(errno)));
    }
    absl::StatusOr<bool> ready = WaitFor(fd, POLLOUT, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s: timed out sending (%d of %d bytes sent)", what, done, size));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadAllBefore(int fd, void* data, size_t size, absl::Time deadline,
                           absl::string_view what) {
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = recv(fd, p + done, size - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrFormat(
          "%s closed the connection (%d of %d bytes received)", what, done, size));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrFormat("%s: connection lost while receiving: %s", what, ErrnoMessage(errno)));
    }
    absl::StatusOr<bool> ready = WaitFor(fd, POLLIN, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s: timed out receiving (%d of %d bytes received)", what, done, size));
    }
  }
  return absl::OkStatus();
}

}  // namespace glm4v::comm
