#include "worker/comm/socket_communicator.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/dtype.h"
#include "common/status_macros.h"

namespace glm4v::comm {
namespace {

constexpr uint32_t kHelloMagic = 0x474c4d34;   // "GLM4"
constexpr uint32_t kHeaderMagic = 0x434f4c4c;  // "COLL"
constexpr uint32_t kProtocolVersion = 1;

enum Op : uint32_t {
  kAllReduceF32 = 1,
  kAllReduceBF16 = 2,
  kAllGather = 3,
  kBroadcast = 4,
  kBarrier = 5,
};

const char* OpName(uint32_t op) {
  switch (op) {
    case kAllReduceF32: return "AllReduceSum(f32)";
    case kAllReduceBF16: return "AllReduceSum(bf16)";
    case kAllGather: return "AllGather";
    case kBroadcast: return "Broadcast";
    case kBarrier: return "Barrier";
    default: return "unknown-op";
  }
}

// Fixed-size bootstrap messages, sent as raw little-endian structs (all supported hosts are
// little-endian x86-64/aarch64).
struct Hello {
  uint32_t magic;
  uint32_t version;
  uint32_t world_size;
  uint32_t rank;
  uint32_t listen_port;  // rendezvous only
  uint32_t reserved;
};

struct Welcome {
  uint32_t magic;
  uint32_t ok;
  char reason[120];  // NUL-terminated when !ok
};

struct PeerEntry {
  uint32_t ip;  // network byte order
  uint32_t port;
};

Hello MakeHello(const SocketCommunicatorOptions& o, int port) {
  return Hello{kHelloMagic, kProtocolVersion, static_cast<uint32_t>(o.world_size),
               static_cast<uint32_t>(o.rank), static_cast<uint32_t>(port), 0};
}

absl::Status ValidateOptions(const SocketCommunicatorOptions& o) {
  if (o.world_size < 1 || o.world_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrFormat("world_size must be in [1, 1024], got %d", o.world_size));
  }
  if (o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rank %d out of range for world_size %d", o.rank, o.world_size));
  }
  if (o.timeout <= absl::ZeroDuration() || o.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout and connect_timeout must be positive");
  }
  if (o.chunk_bytes < 64) return absl::InvalidArgumentError("chunk_bytes must be >= 64");
  return absl::OkStatus();
}

std::string RankName(int r) { return absl::StrFormat("rank %d", r); }

// Rank 0's side of the rendezvous: collect every rank's hello, then send everyone the table.
// Returns connections indexed by rank.
absl::StatusOr<std::vector<UniqueFd>> RendezvousAsRoot(const SocketCommunicatorOptions& o,
                                                       const SocketListener& listener,
                                                       int listen_fd, absl::Time deadline) {
  const int n = o.world_size;
  std::vector<UniqueFd> fds(n);
  std::vector<PeerEntry> table(n, PeerEntry{0, 0});
  int joined = 1;
  auto reject_all = [&](const std::string& reason) {
    Welcome w{kHelloMagic, 0, {0}};
    snprintf(w.reason, sizeof(w.reason), "%s", reason.c_str());
    for (UniqueFd& fd : fds) {
      if (fd.valid()) (void)WriteAllBefore(fd.get(), &w, sizeof(w), deadline, "peer");
    }
    return absl::InvalidArgumentError("rendezvous at " + listener.address() + ": " + reason);
  };
  while (joined < n) {
    absl::StatusOr<UniqueFd> conn = AcceptBefore(listen_fd, deadline);
    if (!conn.ok()) {
      std::vector<int> missing;
      for (int r = 1; r < n; ++r) {
        if (!fds[r].valid()) missing.push_back(r);
      }
      return absl::DeadlineExceededError(absl::StrFormat(
          "rendezvous at %s: only %d of %d ranks joined within %s; missing ranks: %s",
          listener.address(), joined, n, absl::FormatDuration(o.connect_timeout),
          absl::StrJoin(missing, ",")));
    }
    Hello h{};
    if (!ReadAllBefore(conn->get(), &h, sizeof(h), deadline, "joining rank").ok() ||
        h.magic != kHelloMagic) {
      continue;  // not one of ours (a port probe?): ignore it
    }
    std::string problem;
    if (h.version != kProtocolVersion) {
      problem = absl::StrFormat("rank %d speaks protocol %d, rank 0 speaks %d", h.rank,
                                h.version, kProtocolVersion);
    } else if (static_cast<int>(h.world_size) != n) {
      problem = absl::StrFormat("rank %d has world_size %d, rank 0 has %d", h.rank,
                                h.world_size, n);
    } else if (h.rank == 0 || static_cast<int>(h.rank) >= n) {
      problem = absl::StrFormat("a joining process claims invalid rank %d", h.rank);
    } else if (fds[h.rank].valid()) {
      problem = absl::StrFormat("two processes claim rank %d", h.rank);
    }
    if (!problem.empty()) {
      Welcome w{kHelloMagic, 0, {0}};
      snprintf(w.reason, sizeof(w.reason), "%s", problem.c_str());
      (void)WriteAllBefore(conn->get(), &w, sizeof(w), deadline, "peer");
      return reject_all(problem);
    }
    ASSIGN_OR_RETURN(sockaddr_in peer, PeerAddress(conn->get()));
    table[h.rank] = PeerEntry{peer.sin_addr.s_addr, h.listen_port};
    fds[h.rank] = *std::move(conn);
    ++joined;
  }
  const Welcome ok{kHelloMagic, 1, {0}};
  for (int r = 1; r < n; ++r) {
    RETURN_IF_ERROR(WriteAllBefore(fds[r].get(), &ok, sizeof(ok), deadline, RankName(r)));
    RETURN_IF_ERROR(WriteAllBefore(fds[r].get(), table.data(), n * sizeof(PeerEntry), deadline,
                                   RankName(r)));
  }
  return fds;
}

// A non-zero rank's side: join through rank 0, then connect to lower ranks and accept higher.
absl::StatusOr<std::vector<UniqueFd>> RendezvousAsPeer(const SocketCommunicatorOptions& o,
                                                       absl::Time deadline) {
  const int n = o.world_size;
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(o.rendezvous));
  ASSIGN_OR_RETURN(sockaddr_in root_addr, ResolveIpv4(hp));
  if (hp.port == 0) return absl::InvalidArgumentError("rendezvous port 0 is only valid at rank 0");
  std::vector<UniqueFd> fds(n);
  ASSIGN_OR_RETURN(fds[0], ConnectBefore(root_addr, deadline, "rank 0 (rendezvous)"));
  // Listen on the interface that reaches rank 0, so peers on the same network can reach us.
  ASSIGN_OR_RETURN(sockaddr_in local, LocalAddress(fds[0].get()));
  local.sin_port = 0;
  ASSIGN_OR_RETURN(UniqueFd listen_fd, ListenOn(local, n));
  ASSIGN_OR_RETURN(sockaddr_in bound, LocalAddress(listen_fd.get()));
  const Hello hello = MakeHello(o, ntohs(bound.sin_port));
  const std::string root_name = "rank 0 at " + o.rendezvous;
  RETURN_IF_ERROR(WriteAllBefore(fds[0].get(), &hello, sizeof(hello), deadline, root_name));
  Welcome w{};
  RETURN_IF_ERROR(ReadAllBefore(fds[0].get(), &w, sizeof(w), deadline, root_name));
  if (w.magic != kHelloMagic) {
    return absl::FailedPreconditionError(root_name + " is not a communicator rendezvous");
  }
  if (!w.ok) {
    w.reason[sizeof(w.reason) - 1] = '\0';
    return absl::FailedPreconditionError(
        absl::StrFormat("%s rejected rank %d: %s", root_name, o.rank, w.reason));
  }
  std::vector<PeerEntry> table(n);
  RETURN_IF_ERROR(
      ReadAllBefore(fds[0].get(), table.data(), n * sizeof(PeerEntry), deadline, root_name));

  const Hello mesh_hello = MakeHello(o, 0);
  for (int q = 1; q < o.rank; ++q) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = table[q].ip;
    addr.sin_port = htons(static_cast<uint16_t>(table[q].port));
    ASSIGN_OR_RETURN(fds[q], ConnectBefore(addr, deadline, RankName(q)));
    RETURN_IF_ERROR(
        WriteAllBefore(fds[q].get(), &mesh_hello, sizeof(mesh_hello), deadline, RankName(q)));
  }
  for (int accepted = 0; accepted < n - 1 - o.rank;) {
    absl::StatusOr<UniqueFd> conn = AcceptBefore(listen_fd.get(), deadline);
    if (!conn.ok()) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "rank %d: higher ranks did not all connect within %s", o.rank,
          absl::FormatDuration(o.connect_timeout)));
    }
    Hello h{};
    if (!ReadAllBefore(conn->get(), &h, sizeof(h), deadline, "peer").ok() ||
        h.magic != kHelloMagic) {
      continue;
    }
    if (static_cast<int>(h.rank) <= o.rank || static_cast<int>(h.rank) >= n ||
        static_cast<int>(h.world_size) != n || fds[h.rank].valid()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "rank %d: unexpected mesh connection claiming rank %d of %d", o.rank, h.rank,
          h.world_size));
    }
    fds[h.rank] = *std::move(conn);
    ++accepted;
  }
  return fds;
}

std::vector<int> ReleaseAll(std::vector<UniqueFd> fds) {
  std::vector<int> raw;
  raw.reserve(fds.size());
  for (UniqueFd& fd : fds) raw.push_back(fd.release());
  return raw;
}

// Contiguous split of `count` elements into `parts` segments whose sizes differ by at most 1.
size_t SegmentBegin(size_t count, int parts, int s) {
  const size_t base = count / parts, extra = count % parts;
  return s * base + std::min<size_t>(s, extra);
}

// Element access for the reduction: f32 as is, bf16 widened to f32 and rounded once at the end.
inline float Load(float v) { return v; }
inline float Load(uint16_t v) { return BF16ToF32(v); }
inline void Store(float v, float* out) { *out = v; }
inline void Store(float v, uint16_t* out) { *out = F32ToBF16(v); }

}  // namespace

absl::StatusOr<SocketListener> SocketListener::Bind(absl::string_view address) {
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address));
  ASSIGN_OR_RETURN(sockaddr_in addr, ResolveIpv4(hp));
  ASSIGN_OR_RETURN(UniqueFd fd, ListenOn(addr, 128));
  ASSIGN_OR_RETURN(sockaddr_in bound, LocalAddress(fd.get()));
  return SocketListener(std::move(fd), bound, ntohs(bound.sin_port));
}

std::string SocketListener::address() const { return FormatSockaddr(addr_); }

absl::StatusOr<std::unique_ptr<SocketCommunicator>> SocketCommunicator::Create(
    const SocketCommunicatorOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (options.rank == 0 && options.world_size > 1) {
    ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options.rendezvous));
    if (hp.port == 0) {
      return absl::InvalidArgumentError(
          "rank 0 cannot listen on port 0 without a pre-bound SocketListener: other ranks "
          "would not know the port");
    }
    ASSIGN_OR_RETURN(SocketListener listener, SocketListener::Bind(options.rendezvous));
    return Create(options, std::move(listener));
  }
  std::vector<UniqueFd> fds(options.world_size);
  if (options.world_size > 1) {
    const absl::Time deadline = absl::Now() + options.connect_timeout;
    ASSIGN_OR_RETURN(fds, RendezvousAsPeer(options, deadline));
  }
  return std::unique_ptr<SocketCommunicator>(
      new SocketCommunicator(options, ReleaseAll(std::move(fds))));
}

absl::StatusOr<std::unique_ptr<SocketCommunicator>> SocketCommunicator::Create(
    const SocketCommunicatorOptions& options, SocketListener listener) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (options.rank != 0) {
    return absl::InvalidArgumentError("only rank 0 takes a pre-bound listener");
  }
  std::vector<UniqueFd> fds(options.world_size);
  if (options.world_size > 1) {
    const absl::Time deadline = absl::Now() + options.connect_timeout;
    ASSIGN_OR_RETURN(fds, RendezvousAsRoot(options, listener, listener.fd_.get(), deadline));
  }
  return std::unique_ptr<SocketCommunicator>(
      new SocketCommunicator(options, ReleaseAll(std::move(fds))));
}

SocketCommunicator::SocketCommunicator(const SocketCommunicatorOptions& options,
                                       std::vector<int> fds)
    : rank_(options.rank),
      world_size_(options.world_size),
      timeout_(options.timeout),
      chunk_bytes_(options.chunk_bytes),
      fds_(fds),
      exchange_(std::move(fds)),
      peer_headers_(options.world_size) {}

SocketCommunicator::~SocketCommunicator() {
  for (int fd : fds_) {
    if (fd >= 0) close(fd);
  }
}

void SocketCommunicator::Abort() {
  // shutdown() (not close) so that fd numbers stay owned until the destructor and a collective
  // blocked in poll() on another thread wakes up with an error.
  for (int fd : fds_) {
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
  }
}

absl::Status SocketCommunicator::Fail(absl::Status status) {
  if (broken_.ok()) broken_ = status;
  Abort();
  return status;
}

absl::Status SocketCommunicator::CheckUsable() const {
  if (broken_.ok()) return absl::OkStatus();
  return absl::Status(broken_.code(),
                      absl::StrCat("communicator is broken by an earlier error: ",
                                   broken_.message()));
}

std::vector<int> SocketCommunicator::AllPeers() const {
  std::vector<int> peers;
  for (int r = 0; r < world_size_; ++r) {
    if (r != rank_) peers.push_back(r);
  }
  return peers;
}

std::string SocketCommunicator::Name(const Header& h) const {
  return absl::StrFormat("%s #%d (size %d, arg %d)", OpName(h.op), h.seq, h.size, h.arg);
}

void SocketCommunicator::QueueHeaders(const Header& mine, bool send_to_all,
                                      const std::vector<int>& recv_from) {
  expected_ = mine;
  if (send_to_all) {
    for (int p : AllPeers()) exchange_.Send(p, &expected_, sizeof(Header));
  }
  for (int p : recv_from) {
    exchange_.Recv(p, &peer_headers_[p], sizeof(Header), [this, p]() {
      const Header& got = peer_headers_[p];
      if (got.magic != kHeaderMagic) {
        return absl::DataLossError(absl::StrFormat(
            "rank %d: stream from rank %d is out of sync (bad collective header)", rank_, p));
      }
      if (got.op != expected_.op || got.seq != expected_.seq || got.size != expected_.size ||
          got.arg != expected_.arg) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "collective mismatch: rank %d called %s but rank %d called %s", rank_,
            Name(expected_), p, Name(got)));
      }
      return absl::OkStatus();
    });
  }
}

template <typename T>
absl::Status SocketCommunicator::AllReduceImpl(T* data, size_t count, uint32_t op) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (world_size_ == 1) return absl::OkStatus();
  if (count > 0 && data == nullptr) return absl::InvalidArgumentError("null buffer");
  const int n = world_size_;
  const Header header{kHeaderMagic, op, seq_++, count, 0};
  const std::string what = absl::StrFormat("rank %d %s", rank_, Name(header));
  const std::vector<int> peers = AllPeers();

  // Piece k of segment s covers elements [begin_s + k*piece, min(begin_s + (k+1)*piece, end_s)).
  const size_t piece = std::max<size_t>(1, chunk_bytes_ / sizeof(T));
  const size_t max_segment = count / n + (count % n != 0);
  const size_t rounds = (max_segment + piece - 1) / piece;
  auto piece_range = [&](int s, size_t k, size_t* begin, size_t* len) {
    const size_t seg_begin = SegmentBegin(count, n, s), seg_end = SegmentBegin(count, n, s + 1);
    *begin = std::min(seg_begin + k * piece, seg_end);
    *len = std::min(seg_begin + (k + 1) * piece, seg_end) - *begin;
  };
  if (rounds > 0) {
    staging_.resize(n * piece * sizeof(T));
    accum_.resize(piece);
  }
  T* staging = reinterpret_cast<T*>(staging_.data());

  // Round k: reduce-scatter piece k and, overlapped with it, all-gather reduced piece k-1.
  // Per connection both sides queue [scatter piece k, gather piece k-1], so the orders match.
  for (size_t k = 0; k <= rounds; ++k) {
    exchange_.Clear();
    if (k == 0) QueueHeaders(header, /*send_to_all=*/true, peers);
    size_t own_begin = 0, own_len = 0, prev_begin = 0, prev_len = 0;
    if (k < rounds) piece_range(rank_, k, &own_begin, &own_len);
    if (k > 0) piece_range(rank_, k - 1, &prev_begin, &prev_len);
    for (int p : peers) {
      if (k < rounds) {
        size_t b, len;
        piece_range(p, k, &b, &len);
        exchange_.Send(p, data + b, len * sizeof(T));
        exchange_.Recv(p, staging + p * piece, own_len * sizeof(T));
      }
      if (k > 0) {
        size_t b, len;
        piece_range(p, k - 1, &b, &len);
        exchange_.Send(p, data + prev_begin, prev_len * sizeof(T));
        exchange_.Recv(p, data + b, len * sizeof(T));
      }
    }
    absl::Status st = exchange_.Run(timeout_, what);
    if (!st.ok()) return Fail(st);
    if (k < rounds && own_len > 0) {
      // Fixed rank order: acc = x0; acc += x1; ... — identical bits regardless of timing.
      float* acc = accum_.data();
      for (int q = 0; q < n; ++q) {
        const T* src = q == rank_ ? data + own_begin : staging + q * piece;
        if (q == 0) {
          for (size_t i = 0; i < own_len; ++i) acc[i] = Load(src[i]);
        } else {
          for (size_t i = 0; i < own_len; ++i) acc[i] += Load(src[i]);
        }
      }
      for (size_t i = 0; i < own_len; ++i) Store(acc[i], data + own_begin + i);
    }
  }
  return absl::OkStatus();
}

absl::Status SocketCommunicator::AllReduceSum(float* data, size_t count) {
  return AllReduceImpl<float>(data, count, kAllReduceF32);
}

absl::Status SocketCommunicator::AllReduceSumBF16(uint16_t* data, size_t count) {
  return AllReduceImpl<uint16_t>(data, count, kAllReduceBF16);
}

absl::Status SocketCommunicator::AllGather(const void* input, void* output,
                                           size_t bytes_per_rank) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (bytes_per_rank > 0 && (input == nullptr || output == nullptr)) {
    return absl::InvalidArgumentError("null buffer");
  }
  char* out = static_cast<char*>(output);
  char* mine = out + rank_ * bytes_per_rank;
  if (bytes_per_rank > 0 && input != mine) std::memmove(mine, input, bytes_per_rank);
  if (world_size_ == 1) return absl::OkStatus();
  const Header header{kHeaderMagic, kAllGather, seq_++, bytes_per_rank, 0};
  exchange_.Clear();
  QueueHeaders(header, /*send_to_all=*/true, AllPeers());
  for (int p : AllPeers()) {
    exchange_.Send(p, mine, bytes_per_rank);
    exchange_.Recv(p, out + p * bytes_per_rank, bytes_per_rank);
  }
  absl::Status st = exchange_.Run(timeout_, absl::StrFormat("rank %d %s", rank_, Name(header)));
  return st.ok() ? st : Fail(st);
}

absl::Status SocketCommunicator::Broadcast(void* data, size_t bytes, int root) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (root < 0 || root >= world_size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("broadcast root %d out of range for world_size %d", root, world_size_));
  }
  if (bytes > 0 && data == nullptr) return absl::InvalidArgumentError("null buffer");
  if (world_size_ == 1) return absl::OkStatus();
  const Header header{kHeaderMagic, kBroadcast, seq_++, bytes, static_cast<uint64_t>(root)};
  exchange_.Clear();
  // Star from the root: at TP <= 8 and control-message sizes one hop beats a tree.
  if (rank_ == root) {
    QueueHeaders(header, /*send_to_all=*/true, {});
    for (int p : AllPeers()) exchange_.Send(p, data, bytes);
  } else {
    QueueHeaders(header, /*send_to_all=*/false, {root});
    exchange_.Recv(root, data, bytes);
  }
  absl::Status st = exchange_.Run(timeout_, absl::StrFormat("rank %d %s", rank_, Name(header)));
  return st.ok() ? st : Fail(st);
}

absl::Status SocketCommunicator::Barrier() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckUsable());
  if (world_size_ == 1) return absl::OkStatus();
  const Header header{kHeaderMagic, kBarrier, seq_++, 0, 0};
  exchange_.Clear();
  // Everyone tells everyone: no rank leaves before all have arrived.
  QueueHeaders(header, /*send_to_all=*/true, AllPeers());
  absl::Status st = exchange_.Run(timeout_, absl::StrFormat("rank %d %s", rank_, Name(header)));
  return st.ok() ? st : Fail(st);
}

}  // namespace glm4v::comm
