// The mergeable-rank table of a tiktoken-style BPE: token bytes <-> rank.
//
// File format (GLM-4's tokenizer.model, tiktoken's *.tiktoken): one token per line,
// "<base64 of the token bytes> <rank>". Ranks must be exactly 0..n-1 and token bytes unique,
// because the rank is both the token id and the merge priority.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::tokenizer {

using TokenId = int32_t;

// Decodes standard base64 (RFC 4648 alphabet, '=' padding required to a multiple of 4).
// Returns false on any other character, bad padding or non-zero trailing bits.
bool DecodeBase64Strict(absl::string_view in, std::string* out);

class BpeRanks {
 public:
  static absl::StatusOr<BpeRanks> LoadFile(const std::string& path);
  // `source` names the input in error messages.
  static absl::StatusOr<BpeRanks> Parse(absl::string_view contents,
                                        absl::string_view source = "<memory>");

  BpeRanks(BpeRanks&&) = default;
  BpeRanks& operator=(BpeRanks&&) = default;
  BpeRanks(const BpeRanks&) = delete;
  BpeRanks& operator=(const BpeRanks&) = delete;

  // Rank of a byte string, or -1 when it is not a token.
  TokenId Find(absl::string_view bytes) const {
    auto it = rank_of_.find(bytes);
    return it == rank_of_.end() ? -1 : it->second;
  }
  // Bytes of rank r (0 <= r < size()).
  absl::string_view Bytes(TokenId r) const { return bytes_of_[r]; }
  size_t size() const { return bytes_of_.size(); }

 private:
  BpeRanks() = default;

  // All token bytes back to back; the views below point into it and it never grows after load.
  // Held by pointer so the views survive a move of BpeRanks.
  std::unique_ptr<std::string> arena_;
  std::vector<absl::string_view> bytes_of_;
  absl::flat_hash_map<absl::string_view, TokenId> rank_of_;
};

}  // namespace glm4v::tokenizer
