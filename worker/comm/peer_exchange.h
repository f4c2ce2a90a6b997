// PeerExchange: moves queued byte ranges to and from several peers at once over non-blocking
// sockets with one poll() loop, so that sends and receives on all connections progress
// together (no deadlock when socket buffers fill) and a silent peer is detected by timeout.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace glm4v::comm {

class PeerExchange {
 public:
  // Called when a receive completes; an error aborts the exchange (e.g. header mismatch).
  using OnReceived = std::function<absl::Status()>;

  // `fds[r]`: connected socket to rank r, -1 for this rank (and for ranks not talked to).
  explicit PeerExchange(std::vector<int> fds);

  // Drops all queued operations (keeps capacity).
  void Clear();

  // Queue transfers; per peer, sends happen in queue order and so do receives. Zero-size
  // operations are ignored. Buffers must stay valid until Run() returns.
  void Send(int peer, const void* data, size_t size);
  void Recv(int peer, void* data, size_t size, OnReceived on_received = nullptr);

  // Runs every queued operation to completion. A peer that makes no progress for `timeout`
  // while it has pending operations -> DEADLINE_EXCEEDED; a closed or reset connection ->
  // UNAVAILABLE. Messages name the peer rank and prefix `what` (the collective).
  absl::Status Run(absl::Duration timeout, const std::string& what);

 private:
  struct Op {
    char* data;
    size_t size;
    size_t done;
    OnReceived on_received;
  };
  struct Peer {
    int fd = -1;
    std::vector<Op> sends, recvs;
    size_t send_head = 0, recv_head = 0;  // first unfinished op
    size_t bytes_to_send = 0, bytes_sent = 0, bytes_to_recv = 0, bytes_received = 0;
    bool can_send = true, can_recv = true;  // not yet known to block (EAGAIN)
    absl::Time last_progress;
    bool pending() const { return send_head < sends.size() || recv_head < recvs.size(); }
  };

  // Moves as many bytes as the sockets accept without blocking; sets *progressed.
  absl::Status Pump(int rank, Peer& peer, const std::string& what, bool* progressed);
  std::string Describe(int rank, const Peer& peer) const;

  std::vector<Peer> peers_;
};

}  // namespace glm4v::comm
