#include "services/vision/feature_cache.h"

namespace glm4v {

std::shared_ptr<const Tensor> FeatureCache::Find(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void FeatureCache::Insert(const std::string& key, std::shared_ptr<const Tensor> features) {
  if (capacity_ == 0) return;
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    it->second->second = std::move(features);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(key, std::move(features));
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

size_t FeatureCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

}  // namespace glm4v
