#include "services/gateway/tokenizer/special_tokens.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace glm4v::tokenizer {

absl::Span<const absl::string_view> Glm4SpecialTokenNames() {
  static constexpr absl::string_view kNames[] = {
      "<|endoftext|>",      "[MASK]",           "[gMASK]",           "[sMASK]",
      "<sop>",              "<eop>",            "<|system|>",        "<|user|>",
      "<|assistant|>",      "<|observation|>",  "<|begin_of_image|>", "<|end_of_image|>",
      "<|begin_of_video|>", "<|end_of_video|>",
  };
  return kNames;
}

std::vector<SpecialToken> Glm4DefaultSpecialTokens(size_t num_ranks) {
  std::vector<SpecialToken> out;
  TokenId id = static_cast<TokenId>(num_ranks);
  for (absl::string_view name : Glm4SpecialTokenNames()) {
    out.push_back({std::string(name), id++});
  }
  return out;
}

absl::StatusOr<std::vector<SpecialToken>> ParseAddedTokens(absl::string_view json_text,
                                                           absl::string_view source) {
  nlohmann::json doc = nlohmann::json::parse(json_text.begin(), json_text.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: not a JSON object", source));
  }
  std::vector<SpecialToken> out;
  auto it = doc.find("added_tokens_decoder");
  if (it == doc.end()) return out;
  if (!it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: added_tokens_decoder is not an object", source));
  }
  for (auto& [key, value] : it->items()) {
    int64_t id = -1;
    if (!absl::SimpleAtoi(key, &id) || id < 0 || id > std::numeric_limits<TokenId>::max()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: added token id \"%s\" is not a non-negative integer", source, key));
    }
    auto content = value.is_object() ? value.find("content") : value.end();
    if (!value.is_object() || content == value.end() || !content->is_string() ||
        content->get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: added token %d has no non-empty \"content\" string", source, id));
    }
    out.push_back({content->get<std::string>(), static_cast<TokenId>(id)});
  }
  return out;
}

std::vector<SpecialToken> ApplyOverrides(std::vector<SpecialToken> base,
                                         const std::vector<SpecialToken>& overrides) {
  for (const SpecialToken& o : overrides) {
    bool found = false;
    for (SpecialToken& b : base) {
      if (b.text == o.text) {
        b.id = o.id;
        found = true;
      }
    }
    if (!found) base.push_back(o);
  }
  return base;
}

}  // namespace glm4v::tokenizer
