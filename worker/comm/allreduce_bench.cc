// All-reduce benchmark at the sizes of a GLM-4V-9B decoder step (hidden 4096): decode batches
// 1/8/32/64 and prefill chunks of 1k/4k tokens, f32 and bf16.
//
// Socket backend: TP ranks are real processes (forked) talking over loopback TCP, like the
// rank processes in production. NCCL backend: TP=1 on device 0 when a GPU is present (one GPU
// cannot host two NCCL ranks). Rank 0 times every call; per-size results are
//   p50/p99 latency, algbw = bytes / p50, busbw = algbw * 2 (tp - 1) / tp (nccl-tests' convention).
//
//   bazel run //worker/comm:allreduce_bench -- --tp=2,4 --backends=socket,nccl
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/dtype.h"
#include "kernels/cuda/device_info.h"
#include "worker/comm/communicator.h"
#include "worker/comm/nccl_communicator.h"
#include "worker/comm/socket_communicator.h"

ABSL_FLAG(std::string, tp, "2,4", "comma-separated TP sizes for the socket backend");
ABSL_FLAG(std::string, backends, "socket,nccl", "socket and/or nccl (nccl needs a GPU)");
ABSL_FLAG(int64_t, max_iters, 2000, "iterations for the smallest sizes");
ABSL_FLAG(int64_t, bytes_per_size, 256 << 20, "aim for about this many bytes reduced per size");
ABSL_FLAG(int64_t, chunk_bytes, 1 << 20, "socket backend all-reduce pipelining chunk");

namespace glm4v::comm {
namespace {

constexpr int kHidden = 4096;

struct Case {
  std::string name;  // rows x hidden
  size_t count;
  bool bf16;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (bool bf16 : {false, true}) {
    for (int rows : {1, 8, 32, 64, 1024, 4096}) {
      cases.push_back(Case{absl::StrFormat("%s %s x %d", rows <= 64 ? "decode " : "prefill",
                                           rows <= 64 ? "batch" : "tokens", rows),
                           static_cast<size_t>(rows) * kHidden, bf16});
    }
  }
  return cases;
}

int Iterations(size_t bytes) {
  const int64_t by_volume = absl::GetFlag(FLAGS_bytes_per_size) / std::max<size_t>(bytes, 1);
  return static_cast<int>(std::clamp<int64_t>(by_volume, 5, absl::GetFlag(FLAGS_max_iters)));
}

// Runs every case on `comm`; `alloc` gives a buffer of the case's bytes in the communicator's
// memory space. Rank 0 prints one line per case.
template <typename Alloc>
absl::Status RunCases(Communicator& comm, Alloc alloc) {
  const int tp = comm.world_size();
  for (const Case& c : Cases()) {
    const size_t bytes = c.count * (c.bf16 ? 2 : 4);
    void* buf = alloc(c, bytes);
    const int iters = Iterations(bytes);
    auto once = [&]() {
      return c.bf16 ? comm.AllReduceSumBF16(static_cast<uint16_t*>(buf), c.count)
                    : comm.AllReduceSum(static_cast<float*>(buf), c.count);
    };
    if (absl::Status st = comm.Barrier(); !st.ok()) return st;
    for (int i = 0; i < 3; ++i) {  // warm-up: connections, caches, page faults
      if (absl::Status st = once(); !st.ok()) return st;
    }
    std::vector<double> us(iters);
    for (int i = 0; i < iters; ++i) {
      const absl::Time start = absl::Now();
      if (absl::Status st = once(); !st.ok()) return st;
      us[i] = absl::ToDoubleMicroseconds(absl::Now() - start);
    }
    if (comm.rank() == 0) {
      std::sort(us.begin(), us.end());
      const double p50 = us[iters / 2];
      const double p99 = us[std::min<int>(iters - 1, static_cast<int>(iters * 0.99))];
      const double algbw = bytes / (p50 * 1e-6) / 1e9;
      const double busbw = algbw * 2.0 * (tp - 1) / tp;
      std::printf("%-7s tp=%d %-5s %-22s %10zu B %6d it  p50 %10.1f us  p99 %10.1f us  "
                  "algbw %7.3f GB/s  busbw %7.3f GB/s\n",
                  std::string(comm.backend_name()).c_str(), tp, c.bf16 ? "bf16" : "f32",
                  c.name.c_str(), bytes, iters, p50, p99, algbw, busbw);
      std::fflush(stdout);
    }
  }
  return comm.Barrier();
}

absl::Status RunSocketRank(const SocketCommunicatorOptions& options,
                           std::optional<SocketListener> listener) {
  absl::StatusOr<std::unique_ptr<SocketCommunicator>> comm =
      listener.has_value() ? SocketCommunicator::Create(options, *std::move(listener))
                           : SocketCommunicator::Create(options);
  if (!comm.ok()) return comm.status();
  std::vector<char> storage;
  return RunCases(**comm, [&](const Case& c, size_t bytes) -> void* {
    storage.assign(bytes, 0);
    // Small values (exact in bf16 too) so sums never overflow across iterations' reuse.
    if (c.bf16) {
      uint16_t* p = reinterpret_cast<uint16_t*>(storage.data());
      for (size_t i = 0; i < c.count; ++i) p[i] = F32ToBF16(0.0f);
    }
    return storage.data();
  });
}

// Forks tp - 1 child ranks; this process is rank 0.
absl::Status BenchSocket(int tp) {
  absl::StatusOr<SocketListener> listener = SocketListener::Bind("127.0.0.1:0");
  if (!listener.ok()) return listener.status();
  SocketCommunicatorOptions options;
  options.world_size = tp;
  options.rendezvous = listener->address();
  options.timeout = absl::Seconds(60);
  options.chunk_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_chunk_bytes));
  std::vector<pid_t> children;
  for (int r = 1; r < tp; ++r) {
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      options.rank = r;
      absl::Status st = RunSocketRank(options, std::nullopt);
      if (!st.ok()) std::fprintf(stderr, "rank %d: %s\n", r, st.ToString().c_str());
      _exit(st.ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  options.rank = 0;
  absl::Status st = RunSocketRank(options, *std::move(listener));
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (st.ok() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      st = absl::InternalError(absl::StrFormat("child rank (pid %d) failed", pid));
    }
  }
  return st;
}

absl::Status BenchNccl() {
  absl::StatusOr<std::unique_ptr<SocketCommunicator>> host =
      SocketCommunicator::Create(SocketCommunicatorOptions{});
  if (!host.ok()) return host.status();
  absl::StatusOr<std::unique_ptr<NcclCommunicator>> nccl =
      NcclCommunicator::Create(**host, NcclCommunicatorOptions{});
  if (!nccl.ok()) return nccl.status();
  void* dev = nullptr;
  absl::Status st = RunCases(**nccl, [&](const Case&, size_t bytes) -> void* {
    if (dev != nullptr) cudaFree(dev);
    dev = nullptr;
    if (cudaMalloc(&dev, bytes) != cudaSuccess) return nullptr;
    cudaMemset(dev, 0, bytes);
    return dev;
  });
  if (dev != nullptr) cudaFree(dev);
  return st;
}

int Main() {
  int failures = 0;
  const std::string backends = absl::GetFlag(FLAGS_backends);
  if (absl::StrContains(backends, "socket")) {
    for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_tp), ',', absl::SkipEmpty())) {
      int tp = 0;
      if (!absl::SimpleAtoi(t, &tp) || tp < 1) {
        std::fprintf(stderr, "bad --tp entry \"%s\"\n", std::string(t).c_str());
        return 2;
      }
      absl::Status st = BenchSocket(tp);
      if (!st.ok()) {
        std::fprintf(stderr, "socket tp=%d: %s\n", tp, st.ToString().c_str());
        ++failures;
      }
    }
  }
  if (absl::StrContains(backends, "nccl")) {
    if (glm4v::cuda::DeviceCount() == 0) {
      std::printf("nccl    skipped: %s\n", glm4v::cuda::NoDeviceReason().c_str());
    } else {
      absl::Status st = BenchNccl();
      if (!st.ok()) {
        std::fprintf(stderr, "nccl: %s\n", st.ToString().c_str());
        ++failures;
      }
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace glm4v::comm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::comm::Main();
}
