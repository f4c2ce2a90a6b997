// SocketCommunicator: the host-memory Communicator over TCP (loopback or LAN), for TP ranks
// running as processes (or threads) without NCCL — CPU serving, tests, and control messages.
//
// Bootstrap (rendezvous at rank 0): rank 0 listens on `rendezvous`; every other rank opens a
// listening socket on the interface it reaches rank 0 through, connects to rank 0 and sends
// (rank, world size, its port). Rank 0 answers with everyone's address; ranks then connect
// to every lower-numbered rank, forming a full mesh of TCP connections.
//
// All-reduce is reduce-scatter + all-gather over the mesh, pipelined in chunks: rank r owns
// segment r and sums it over ranks in rank order (x0 + x1 + ... in f32), then sends the result
// to everyone. Each element is therefore computed once, in a fixed order that does not depend
// on timing, and every rank receives the same bits. (A ring would sum each segment in a
// different rotation; the mesh makes results equal to the plain rank-order sum instead.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/peer_exchange.h"
#include "worker/comm/socket_util.h"

namespace glm4v::comm {

struct SocketCommunicatorOptions {
  int rank = 0;
  int world_size = 1;
  // "host:port" where rank 0 listens (unused when world_size == 1). Rank 0 may pass port 0
  // only together with a pre-bound SocketListener.
  std::string rendezvous;
  // A collective fails with DEADLINE_EXCEEDED when a peer makes no progress for this long.
  absl::Duration timeout = absl::Seconds(30);
  // Bound on the whole bootstrap (ranks may start in any order within it).
  absl::Duration connect_timeout = absl::Seconds(60);
  // Pipelining granularity of all-reduce (bytes of one segment piece); bounds scratch memory
  // to about (world_size + 1) * chunk_bytes.
  size_t chunk_bytes = size_t{1} << 20;
};

// A bound listening socket for rank 0, created before the ranks start so that its port is known
// (e.g. "127.0.0.1:0" picks a free port in tests).
class SocketListener {
 public:
  static absl::StatusOr<SocketListener> Bind(absl::string_view address);
  int port() const { return port_; }
  std::string address() const;  // "ip:port"

 private:
  friend class SocketCommunicator;
  SocketListener(UniqueFd fd, sockaddr_in addr, int port)
      : fd_(std::move(fd)), addr_(addr), port_(port) {}
  UniqueFd fd_;
  sockaddr_in addr_;
  int port_;
};

class SocketCommunicator : public Communicator {
 public:
  // Joins the group; blocks until all world_size ranks have joined or connect_timeout passes.
  static absl::StatusOr<std::unique_ptr<SocketCommunicator>> Create(
      const SocketCommunicatorOptions& options);
  // Rank 0 only: uses an already bound listener instead of binding options.rendezvous.
  static absl::StatusOr<std::unique_ptr<SocketCommunicator>> Create(
      const SocketCommunicatorOptions& options, SocketListener listener);

  ~SocketCommunicator() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  MemorySpace memory_space() const override { return MemorySpace::kHost; }
  absl::string_view backend_name() const override { return "socket"; }

  absl::Status AllReduceSum(float* data, size_t count) override;
  absl::Status AllReduceSumBF16(uint16_t* data, size_t count) override;
  absl::Status AllGather(const void* input, void* output, size_t bytes_per_rank) override;
  absl::Status Broadcast(void* data, size_t bytes, int root) override;
  absl::Status Barrier() override;

  // Tears down all connections now; peers blocked in a collective with us fail promptly.
  void Abort();

  // Header sent ahead of every collective so that ranks calling different collectives (or
  // sizes, roots, or a different number of calls) fail loudly instead of exchanging garbage.
  struct Header {
    uint32_t magic;
    uint32_t op;
    uint64_t seq;
    uint64_t size;
    uint64_t arg;
  };

 private:
  SocketCommunicator(const SocketCommunicatorOptions& options, std::vector<int> fds);

  template <typename T>
  absl::Status AllReduceImpl(T* data, size_t count, uint32_t op);
  // Queues this collective's header to every peer in `send_to` and a validated header receive
  // from every peer in `recv_from`.
  void QueueHeaders(const Header& mine, bool send_to_all, const std::vector<int>& recv_from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<int> AllPeers() const;
  // Records the first error (breaking the communicator) and closes every connection.
  absl::Status Fail(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckUsable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Name(const Header& h) const;

  const int rank_;
  const int world_size_;
  const absl::Duration timeout_;
  const size_t chunk_bytes_;

  // Sockets by rank (-1 for this rank). Never resized; closed only by the destructor, so
  // Abort() may shut them down from another thread while a collective is running.
  const std::vector<int> fds_;

  mutable absl::Mutex mu_;
  PeerExchange exchange_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  Header expected_ ABSL_GUARDED_BY(mu_);
  std::vector<Header> peer_headers_ ABSL_GUARDED_BY(mu_);
  std::vector<char> staging_ ABSL_GUARDED_BY(mu_);  // reduce-scatter pieces from each peer
  std::vector<float> accum_ ABSL_GUARDED_BY(mu_);   // f32 accumulator for one piece
};

}  // namespace glm4v::comm
