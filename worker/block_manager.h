// Hands out fixed-size KV cache blocks (ids into PagedKvCache) with reference counts, and keeps
// a prefix cache: full blocks registered under their content hash stay reusable after their
// last user releases them, until the space is needed (least recently released first).
//
// Block states: free (no content), in use (ref_count > 0, hashed or not), cached-idle
// (ref_count == 0 but still findable by hash, evictable). Free + cached-idle = allocatable.
// Not thread-safe: owned by the engine's step loop.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/block_hash.h"

namespace glm4v::worker {

struct BlockManagerStats {
  int num_blocks = 0;
  int num_free_blocks = 0;         // allocatable: free + cached-idle
  int num_cached_idle_blocks = 0;  // held only by the prefix cache
  int64_t prefix_queries = 0;      // blocks looked up by hash
  int64_t prefix_hits = 0;         // of those, found
  int64_t evictions = 0;           // cached-idle blocks reclaimed for new content
};

class KvBlockManager {
 public:
  KvBlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  KvBlockManager(const KvBlockManager&) = delete;
  KvBlockManager& operator=(const KvBlockManager&) = delete;

  int num_blocks() const { return static_cast<int>(ref_counts_.size()); }
  int block_size() const { return block_size_; }
  bool prefix_caching_enabled() const { return enable_prefix_caching_; }
  int num_free_blocks() const {
    return static_cast<int>(free_blocks_.size() + idle_lru_.size());
  }
  int num_cached_idle_blocks() const { return static_cast<int>(idle_lru_.size()); }
  int ref_count(int block) const { return ref_counts_[block]; }
  BlockManagerStats stats() const;

  // A block with no content and ref_count 1; evicts the least recently released cached block
  // when no free block is left. nullopt when every block is in use.
  std::optional<int> Allocate();

  // Cached block with this content, without taking it (for admission planning).
  std::optional<int> FindCached(const BlockHash& hash) const;
  // Counts a prefix-cache query for the stats (hits counted by AcquireCached).
  void CountPrefixQueries(int blocks) { prefix_queries_ += blocks; }
  // Takes a reference to the cached block with this content; nullopt if none.
  std::optional<int> AcquireCached(const BlockHash& hash);

  // Records that `block` (in use, now full and computed) holds content `hash`. If another
  // block already holds that content, this one stays unregistered.
  void RegisterFull(int block, const BlockHash& hash);

  // Drops one reference. At zero a registered block becomes cached-idle (most recently
  // released), an unregistered one free.
  void Release(int block);

 private:
  int block_size_;
  bool enable_prefix_caching_;
  std::vector<int> ref_counts_;
  std::vector<int> free_blocks_;  // stack: no content
  // Idle cached blocks, least recently released at the front.
  std::list<int> idle_lru_;
  std::vector<std::list<int>::iterator> idle_position_;
  std::vector<bool> is_idle_;
  std::vector<std::optional<BlockHash>> block_hash_;
  absl::flat_hash_map<BlockHash, int> cached_blocks_;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
  int64_t evictions_ = 0;
};

}  // namespace glm4v::worker
