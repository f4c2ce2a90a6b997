// Content hashes of full KV blocks for prefix reuse. A block's hash chains its parent's hash
// with everything that determines the block's K/V values: each row's token id, or for image
// rows the image's content hash and the row index inside the image, plus the RoPE position
// where it differs from the row's cache index. Equal hashes therefore mean equal KV contents
// (up to 128-bit collisions), whatever request the block came from.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/types/span.h"

namespace glm4v {

struct BlockHash {
  uint64_t hi = 0;
  uint64_t lo = 0;

  friend bool operator==(const BlockHash& a, const BlockHash& b) {
    return a.hi == b.hi && a.lo == b.lo;
  }
  friend bool operator!=(const BlockHash& a, const BlockHash& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const BlockHash& b) {
    return H::combine(std::move(h), b.hi, b.lo);
  }
};

// Incremental 128-bit hash over 64-bit words (two independently keyed lanes).
class Hasher128 {
 public:
  Hasher128();
  void Add(uint64_t word);
  void AddBytes(std::string_view bytes);
  void AddHash(const BlockHash& hash) {
    Add(hash.hi);
    Add(hash.lo);
  }
  BlockHash Finish() const;

 private:
  uint64_t a_;
  uint64_t b_;
  uint64_t count_ = 0;
};

// Content hash of an image's feature source (the bytes the caller identifies it by).
BlockHash HashImageContent(std::string_view content_hash_bytes);

// What a cached row is: a text token, or row `image_row` of the image with `image_hash`.
struct RowIdentity {
  int32_t token_id = 0;
  const BlockHash* image_hash = nullptr;  // null for text rows
  int32_t image_row = 0;
  int32_t position = 0;
  int32_t cache_index = 0;  // index of the row in the sequence (its KV slot)
};

// Hash of one full block given its parent's hash (the empty BlockHash for the first block).
BlockHash HashBlock(const BlockHash& parent, absl::Span<const RowIdentity> rows);

}  // namespace glm4v
