#include "worker/comm/test_util.h"

#include <memory>
#include <optional>
#include <thread>
#include <utility>

namespace glm4v::comm::testing {

absl::StatusOr<LoopbackGroup> BindLoopbackGroup(int world_size) {
  absl::StatusOr<SocketListener> listener = SocketListener::Bind("127.0.0.1:0");
  if (!listener.ok()) return listener.status();
  SocketCommunicatorOptions options;
  options.world_size = world_size;
  options.rendezvous = listener->address();
  options.timeout = absl::Seconds(5);
  options.connect_timeout = absl::Seconds(5);
  return LoopbackGroup{options, *std::move(listener)};
}

std::vector<absl::Status> RunThreadedRanks(
    LoopbackGroup group, const std::function<absl::Status(SocketCommunicator&)>& body) {
  const int n = group.options.world_size;
  std::vector<absl::Status> results(n);
  std::optional<SocketListener> listener(std::move(group.listener));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    SocketCommunicatorOptions options = group.options;
    options.rank = r;
    std::optional<SocketListener> mine;
    if (r == 0) mine.emplace(*std::move(listener));
    threads.emplace_back([&results, &body, options, r, mine = std::move(mine)]() mutable {
      absl::StatusOr<std::unique_ptr<SocketCommunicator>> comm =
          r == 0 ? SocketCommunicator::Create(options, *std::move(mine))
                 : SocketCommunicator::Create(options);
      results[r] = comm.ok() ? body(**comm) : comm.status();
    });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace glm4v::comm::testing
