#include "common/block_hash.h"

#include <cstring>

#include "common/counter_rng.h"

namespace glm4v {
namespace {

// Tags keep the word streams of different row kinds from aliasing each other.
constexpr uint64_t kTextRowTag = 0x54455854ULL << 32;     // "TEXT"
constexpr uint64_t kImageRowTag = 0x494d4147ULL << 32;    // "IMAG"
constexpr uint64_t kPositionTag = 0x504f5349ULL << 32;    // "POSI"
constexpr uint64_t kImageContentSeed = 0x696d616765686173ULL;

}  // namespace

Hasher128::Hasher128() : a_(0x243f6a8885a308d3ULL), b_(0x13198a2e03707344ULL) {}

void Hasher128::Add(uint64_t word) {
  ++count_;
  a_ = Mix64(a_ ^ word) + 0x9e3779b97f4a7c15ULL;
  b_ = Mix64(b_ + (word ^ 0xa4093822299f31d0ULL) * 0xff51afd7ed558ccdULL) ^ count_;
}

void Hasher128::AddBytes(std::string_view bytes) {
  Add(bytes.size());
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    Add(word);
  }
  if (i < bytes.size()) {
    uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i, bytes.size() - i);
    Add(word);
  }
}

BlockHash Hasher128::Finish() const {
  return BlockHash{Mix64(a_ ^ Mix64(b_ + count_)), Mix64(b_ ^ Mix64(a_ + ~count_))};
}

BlockHash HashImageContent(std::string_view content_hash_bytes) {
  Hasher128 hasher;
  hasher.Add(kImageContentSeed);
  hasher.AddBytes(content_hash_bytes);
  return hasher.Finish();
}

BlockHash HashBlock(const BlockHash& parent, absl::Span<const RowIdentity> rows) {
  Hasher128 hasher;
  hasher.AddHash(parent);
  hasher.Add(rows.size());
  for (const RowIdentity& row : rows) {
    if (row.image_hash == nullptr) {
      hasher.Add(kTextRowTag | static_cast<uint32_t>(row.token_id));
    } else {
      hasher.Add(kImageRowTag | static_cast<uint32_t>(row.image_row));
      hasher.AddHash(*row.image_hash);
    }
    if (row.position != row.cache_index) {
      hasher.Add(kPositionTag | static_cast<uint32_t>(row.position));
    }
  }
  return hasher.Finish();
}

}  // namespace glm4v
