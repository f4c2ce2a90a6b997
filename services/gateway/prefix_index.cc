#include "services/gateway/prefix_index.h"

#include <algorithm>
#include <vector>

namespace glm4v {

int PrefixIndex::MatchedBlocks(absl::Span<const BlockHash> hashes, absl::Time now) const {
  absl::MutexLock lock(&mu_);
  int matched = 0;
  for (const BlockHash& h : hashes) {
    auto it = last_routed_.find(h);
    if (it == last_routed_.end() || now - it->second > ttl_) break;
    ++matched;
  }
  return matched;
}

void PrefixIndex::Record(absl::Span<const BlockHash> hashes, absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (const BlockHash& h : hashes) last_routed_[h] = now;
  if (last_routed_.size() > max_blocks_) PruneLocked(now);
}

void PrefixIndex::Prune(absl::Time now) {
  absl::MutexLock lock(&mu_);
  PruneLocked(now);
}

void PrefixIndex::PruneLocked(absl::Time now) {
  absl::erase_if(last_routed_, [&](const auto& entry) { return now - entry.second > ttl_; });
  const size_t keep = max_blocks_ - max_blocks_ / 10;
  if (last_routed_.size() <= keep) return;
  std::vector<absl::Time> times;
  times.reserve(last_routed_.size());
  for (const auto& entry : last_routed_) times.push_back(entry.second);
  // The keep-th newest time: everything older goes (ties may keep a few more).
  std::nth_element(times.begin(), times.begin() + (times.size() - keep), times.end());
  const absl::Time cutoff = times[times.size() - keep];
  absl::erase_if(last_routed_, [&](const auto& entry) { return entry.second < cutoff; });
}

void PrefixIndex::Clear() {
  absl::MutexLock lock(&mu_);
  last_routed_.clear();
}

size_t PrefixIndex::size() const {
  absl::MutexLock lock(&mu_);
  return last_routed_.size();
}

}  // namespace glm4v
