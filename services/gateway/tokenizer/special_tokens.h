// GLM-4's special (added) tokens: their default layout after the BPE ranks, and overrides read
// from a Hugging Face tokenizer_config.json.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/gateway/tokenizer/bpe_ranks.h"

namespace glm4v::tokenizer {

struct SpecialToken {
  std::string text;
  TokenId id;
};

// The 14 special tokens in GLM-4's order; token k gets id num_ranks + k.
absl::Span<const absl::string_view> Glm4SpecialTokenNames();

// GLM-4's default layout for a vocabulary of `num_ranks` BPE ranks.
std::vector<SpecialToken> Glm4DefaultSpecialTokens(size_t num_ranks);

// Reads the "added_tokens_decoder" object ({"<id>": {"content": "<text>", ...}, ...}) of a
// tokenizer_config.json. Other keys are ignored; a file without that object yields no tokens.
absl::StatusOr<std::vector<SpecialToken>> ParseAddedTokens(absl::string_view json_text,
                                                           absl::string_view source);

// `base` with every token named in `overrides` given the override's id; overrides naming new
// texts are added. No validation of id collisions here (the Tokenizer does it).
std::vector<SpecialToken> ApplyOverrides(std::vector<SpecialToken> base,
                                         const std::vector<SpecialToken>& overrides);

}  // namespace glm4v::tokenizer
