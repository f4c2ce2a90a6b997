#include "worker/block_manager.h"

#include <cassert>

namespace glm4v::worker {

KvBlockManager::KvBlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size),
      enable_prefix_caching_(enable_prefix_caching),
      ref_counts_(num_blocks, 0),
      idle_position_(num_blocks),
      is_idle_(num_blocks, false),
      block_hash_(num_blocks) {
  free_blocks_.reserve(num_blocks);
  // Popping from the back hands out low ids first (easier to read in logs and tests).
  for (int block = num_blocks - 1; block >= 0; --block) free_blocks_.push_back(block);
}

BlockManagerStats KvBlockManager::stats() const {
  BlockManagerStats stats;
  stats.num_blocks = num_blocks();
  stats.num_free_blocks = num_free_blocks();
  stats.num_cached_idle_blocks = num_cached_idle_blocks();
  stats.prefix_queries = prefix_queries_;
  stats.prefix_hits = prefix_hits_;
  stats.evictions = evictions_;
  return stats;
}

std::optional<int> KvBlockManager::Allocate() {
  int block;
  if (!free_blocks_.empty()) {
    block = free_blocks_.back();
    free_blocks_.pop_back();
  } else if (!idle_lru_.empty()) {
    block = idle_lru_.front();
    idle_lru_.pop_front();
    is_idle_[block] = false;
    cached_blocks_.erase(*block_hash_[block]);
    block_hash_[block].reset();
    ++evictions_;
  } else {
    return std::nullopt;
  }
  assert(ref_counts_[block] == 0);
  ref_counts_[block] = 1;
  return block;
}

std::optional<int> KvBlockManager::FindCached(const BlockHash& hash) const {
  if (!enable_prefix_caching_) return std::nullopt;
  auto it = cached_blocks_.find(hash);
  if (it == cached_blocks_.end()) return std::nullopt;
  return it->second;
}

std::optional<int> KvBlockManager::AcquireCached(const BlockHash& hash) {
  std::optional<int> block = FindCached(hash);
  if (!block.has_value()) return std::nullopt;
  if (is_idle_[*block]) {
    idle_lru_.erase(idle_position_[*block]);
    is_idle_[*block] = false;
  }
  ++ref_counts_[*block];
  ++prefix_hits_;
  return block;
}

void KvBlockManager::RegisterFull(int block, const BlockHash& hash) {
  if (!enable_prefix_caching_ || block_hash_[block].has_value()) return;
  if (cached_blocks_.emplace(hash, block).second) block_hash_[block] = hash;
}

void KvBlockManager::Release(int block) {
  assert(ref_counts_[block] > 0);
  if (--ref_counts_[block] > 0) return;
  if (block_hash_[block].has_value()) {
    idle_position_[block] = idle_lru_.insert(idle_lru_.end(), block);
    is_idle_[block] = true;
  } else {
    free_blocks_.push_back(block);
  }
}

}  // namespace glm4v::worker
