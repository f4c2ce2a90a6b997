// What the gateway believes a decoder worker holds in its prefix cache: the chained hashes of
// the prompt blocks it routed there (services/gateway/prompt_blocks.h), each with when it was
// last routed. Entries age out after `ttl` (the worker evicts idle blocks under pressure, and
// the gateway cannot see that), and the oldest go first beyond `max_blocks`. An estimate for
// routing only: a wrong guess costs a recomputed prefix, never a wrong answer.
#pragma once

#include <cstddef>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/block_hash.h"

namespace glm4v {

class PrefixIndex {
 public:
  PrefixIndex(absl::Duration ttl, size_t max_blocks) : ttl_(ttl), max_blocks_(max_blocks) {}

  // How many leading blocks of `hashes` are held (chained hashes: the first miss ends the run).
  int MatchedBlocks(absl::Span<const BlockHash> hashes, absl::Time now) const;
  // The blocks were routed to this worker at `now`; prunes when over capacity.
  void Record(absl::Span<const BlockHash> hashes, absl::Time now);
  // Drops aged-out entries, then the oldest ones beyond 90 % of max_blocks.
  void Prune(absl::Time now);
  // Forget everything (the worker restarted or went away: its cache is gone).
  void Clear();
  size_t size() const;

 private:
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration ttl_;
  const size_t max_blocks_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockHash, absl::Time> last_routed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v
