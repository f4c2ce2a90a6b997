// Bounded LRU cache of image features by content hash: a picture sent again (the same chat,
// another user) skips decode, preprocess and the vision tower.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/tensor.h"

namespace glm4v {

class FeatureCache {
 public:
  // capacity 0 disables caching.
  explicit FeatureCache(size_t capacity) : capacity_(capacity) {}

  // f32 [rows, hidden] host tensor, or null. A hit becomes the most recently used entry.
  std::shared_ptr<const Tensor> Find(const std::string& key);
  // Inserts (or refreshes) and evicts the least recently used entries beyond capacity.
  void Insert(const std::string& key, std::shared_ptr<const Tensor> features);

  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Tensor>>;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v
