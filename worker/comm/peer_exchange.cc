#include "worker/comm/peer_exchange.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "worker/comm/socket_util.h"

namespace glm4v::comm {

PeerExchange::PeerExchange(std::vector<int> fds) : peers_(fds.size()) {
  for (size_t r = 0; r < fds.size(); ++r) peers_[r].fd = fds[r];
}

void PeerExchange::Clear() {
  for (Peer& p : peers_) {
    p.sends.clear();
    p.recvs.clear();
    p.send_head = p.recv_head = 0;
    p.bytes_to_send = p.bytes_sent = p.bytes_to_recv = p.bytes_received = 0;
  }
}

void PeerExchange::Send(int peer, const void* data, size_t size) {
  if (size == 0) return;
  Peer& p = peers_[peer];
  p.sends.push_back(Op{const_cast<char*>(static_cast<const char*>(data)), size, 0, nullptr});
  p.bytes_to_send += size;
}

void PeerExchange::Recv(int peer, void* data, size_t size, OnReceived on_received) {
  if (size == 0) return;
  Peer& p = peers_[peer];
  p.recvs.push_back(Op{static_cast<char*>(data), size, 0, std::move(on_received)});
  p.bytes_to_recv += size;
}

std::string PeerExchange::Describe(int rank, const Peer& p) const {
  return absl::StrFormat("rank %d (sent %d/%d bytes, received %d/%d bytes)", rank, p.bytes_sent,
                         p.bytes_to_send, p.bytes_received, p.bytes_to_recv);
}

absl::Status PeerExchange::Pump(int rank, Peer& p, const std::string& what, bool* progressed) {
  while (p.can_send && p.send_head < p.sends.size()) {
    Op& op = p.sends[p.send_head];
    ssize_t n = send(p.fd, op.data + op.done, op.size - op.done, MSG_NOSIGNAL);
    if (n > 0) {
      op.done += n;
      p.bytes_sent += n;
      *progressed = true;
      p.last_progress = absl::Now();
      if (op.done == op.size) ++p.send_head;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      p.can_send = false;
    } else {
      return absl::UnavailableError(absl::StrFormat(
          "%s: connection to rank %d lost (peer died or gave up?): %s; %s", what, rank,
          ErrnoMessage(errno), Describe(rank, p)));
    }
  }
  while (p.can_recv && p.recv_head < p.recvs.size()) {
    Op& op = p.recvs[p.recv_head];
    ssize_t n = recv(p.fd, op.data + op.done, op.size - op.done, 0);
    if (n > 0) {
      op.done += n;
      p.bytes_received += n;
      *progressed = true;
      p.last_progress = absl::Now();
      if (op.done == op.size) {
        ++p.recv_head;
        if (op.on_received) {
          absl::Status st = op.on_received();
          if (!st.ok()) return st;
        }
      }
    } else if (n == 0) {
      return absl::UnavailableError(absl::StrFormat(
          "%s: rank %d closed the connection (peer died or gave up?); %s", what, rank,
          Describe(rank, p)));
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      p.can_recv = false;
    } else {
      return absl::UnavailableError(absl::StrFormat(
          "%s: connection to rank %d lost (peer died or gave up?): %s; %s", what, rank,
          ErrnoMessage(errno), Describe(rank, p)));
    }
  }
  return absl::OkStatus();
}

absl::Status PeerExchange::Run(absl::Duration timeout, const std::string& what) {
  const absl::Time start = absl::Now();
  for (Peer& p : peers_) {
    p.last_progress = start;
    p.can_send = p.can_recv = true;  // optimistic first attempt saves a poll() per call
  }
  std::vector<pollfd> fds;
  std::vector<int> fd_rank;
  while (true) {
    bool any_pending = false;
    bool progressed = false;
    for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
      Peer& p = peers_[r];
      if (!p.pending()) continue;
      absl::Status st = Pump(r, p, what, &progressed);
      if (!st.ok()) return st;
      any_pending |= p.pending();
    }
    if (!any_pending) return absl::OkStatus();
    if (progressed) continue;

    // Nothing moved: wait for readiness, bounded by the earliest per-peer inactivity deadline.
    fds.clear();
    fd_rank.clear();
    absl::Time deadline = absl::InfiniteFuture();
    for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
      Peer& p = peers_[r];
      if (!p.pending()) continue;
      short events = 0;
      if (p.send_head < p.sends.size()) events |= POLLOUT;
      if (p.recv_head < p.recvs.size()) events |= POLLIN;
      fds.push_back(pollfd{p.fd, events, 0});
      fd_rank.push_back(r);
      deadline = std::min(deadline, p.last_progress + timeout);
    }
    int n = poll(fds.data(), fds.size(), PollTimeoutMs(deadline));
    if (n < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrFormat("%s: poll(): %s", what, ErrnoMessage(errno)));
    }
    if (n > 0) {
      for (size_t i = 0; i < fds.size(); ++i) {
        Peer& p = peers_[fd_rank[i]];
        // Errors/hang-ups are reported by the next send()/recv(), which names the cause.
        if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) p.can_send = true;
        if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) p.can_recv = true;
      }
      continue;
    }
    const absl::Time now = absl::Now();
    std::vector<std::string> stalled;
    for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
      const Peer& p = peers_[r];
      if (p.pending() && now - p.last_progress >= timeout) stalled.push_back(Describe(r, p));
    }
    if (!stalled.empty()) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "%s: no progress for %s from %s (peer hung, died silently or skipped the call?)", what,
          absl::FormatDuration(timeout), absl::StrJoin(stalled, ", ")));
    }
  }
}

}  // namespace glm4v::comm
