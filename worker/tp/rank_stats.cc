#include "worker/tp/rank_stats.h"

#include "common/status_macros.h"

namespace glm4v::worker::tp {

int64_t KvCacheBytes(const PagedKvCache& cache) {
  return cache.shape().bytes_per_block(DTypeSize(cache.dtype())) * cache.shape().num_blocks;
}

absl::StatusOr<std::vector<RankStats>> GatherRankStats(comm::Communicator& control,
                                                       RankStats mine) {
  std::vector<RankStats> all(static_cast<size_t>(control.world_size()));
  RETURN_IF_ERROR(control.AllGather(&mine, all.data(), sizeof(RankStats)));
  return all;
}

}  // namespace glm4v::worker::tp
