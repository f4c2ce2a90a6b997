#include "worker/tp/rank_stats.h"

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace glm4v::worker::tp {

int64_t KvCacheBytes(const PagedKvCache& cache) {
  return cache.shape().bytes_per_block(DTypeSize(cache.dtype())) * cache.shape().num_blocks;
}

int64_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    for (absl::string_view part : absl::StrSplit(line.substr(6), ' ', absl::SkipWhitespace())) {
      int64_t kib = 0;
      if (absl::SimpleAtoi(part, &kib)) return kib * 1024;
    }
  }
  return 0;
}

absl::StatusOr<std::vector<RankStats>> GatherRankStats(comm::Communicator& control,
                                                       RankStats mine) {
  std::vector<RankStats> all(static_cast<size_t>(control.world_size()));
  RETURN_IF_ERROR(control.AllGather(&mine, all.data(), sizeof(RankStats)));
  return all;
}

}  // namespace glm4v::worker::tp
