// GLM-4 tokenizer facade: BPE ranks + special tokens + pre-tokenizer.
//
// Immutable after loading; every method is const and safe to call from many threads at once.
//
// Invalid UTF-8 policy: user text is not rejected. Before encoding, each invalid sequence is
// replaced by U+FFFD (maximal-subpart rule, see utf8.h), exactly what a Python client would get
// from bytes.decode("utf-8", errors="replace") before calling tiktoken. Decode() repairs the same
// way, DecodeBytes() returns the raw token bytes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/gateway/tokenizer/bpe_ranks.h"
#include "services/gateway/tokenizer/pretokenizer.h"
#include "services/gateway/tokenizer/special_tokens.h"

namespace glm4v::tokenizer {

class Tokenizer {
 public:
  // A checkpoint directory: `tokenizer.model` plus, when present, `tokenizer_config.json` whose
  // added_tokens_decoder overrides the default special-token ids.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromDir(const std::string& dir);
  // A ranks file with GLM-4's default special layout; `config_path` optional ("" = none).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadFromFiles(
      const std::string& ranks_path, const std::string& config_path = "");
  // Checks that every byte is a token, special ids are unique and clear of the ranks.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(BpeRanks ranks,
                                                           std::vector<SpecialToken> specials);

  // Special-token texts in `text` become their ids (tiktoken's allowed_special="all"); for
  // templates and trusted text only.
  absl::StatusOr<std::vector<TokenId>> Encode(absl::string_view text) const;
  // All text is ordinary: "<|user|>" is encoded as its characters. For user content.
  absl::StatusOr<std::vector<TokenId>> EncodeOrdinary(absl::string_view text) const;
  // Appends to `out` instead of returning a new vector.
  absl::Status EncodeOrdinaryTo(absl::string_view text, std::vector<TokenId>* out) const;

  // Concatenated bytes of the tokens (may be invalid UTF-8 if ids split a character).
  absl::StatusOr<std::string> DecodeBytes(absl::Span<const TokenId> ids) const;
  // DecodeBytes with invalid UTF-8 replaced by U+FFFD.
  absl::StatusOr<std::string> Decode(absl::Span<const TokenId> ids) const;
  // Bytes of one token; INVALID_ARGUMENT for an id outside the vocabulary.
  absl::StatusOr<absl::string_view> TokenBytes(TokenId id) const;

  // Id of a special token by its text, e.g. "<|user|>"; NOT_FOUND if absent.
  absl::StatusOr<TokenId> SpecialId(absl::string_view text) const;
  bool IsSpecial(TokenId id) const;
  const std::vector<SpecialToken>& special_tokens() const { return specials_; }

  // One past the largest id.
  size_t vocab_size() const { return id_bytes_.size(); }
  size_t num_ranks() const { return ranks_.size(); }
  const BpeRanks& ranks() const { return ranks_; }

 private:
  Tokenizer(BpeRanks ranks, std::unique_ptr<Pretokenizer> pretokenizer)
      : ranks_(std::move(ranks)), pretokenizer_(std::move(pretokenizer)) {}

  // Encodes valid UTF-8 with no special handling.
  absl::Status EncodeValidOrdinary(absl::string_view text, std::vector<TokenId>* out) const;

  BpeRanks ranks_;
  std::unique_ptr<Pretokenizer> pretokenizer_;
  std::vector<SpecialToken> specials_;
  absl::flat_hash_map<std::string, TokenId> special_ids_;
  // Bytes of every id (ranks and specials); holes between special ids are marked invalid.
  std::vector<absl::string_view> id_bytes_;
  std::vector<bool> id_valid_;
  std::vector<bool> id_special_;
  // first_byte_specials_[b]: indices into specials_ of those starting with byte b, longest first.
  std::vector<std::vector<size_t>> first_byte_specials_;
};

}  // namespace glm4v::tokenizer
