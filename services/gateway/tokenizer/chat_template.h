// GLM-4V chat template, built directly as token ids.
//
//   [gMASK]<sop>  then per message  <|role|> + ordinary(metadata + "\n" + text)
//   a user message with images:     <|user|> "\n" (<|begin_of_image|><|endoftext|><|end_of_image|>)*
//                                   ordinary(text)
//   generation prompt:              <|assistant|>
//
// Role tags and image placeholders are special ids; message text is always encoded in ordinary
// mode, so a user typing "<|user|>" cannot inject a role token. The "\n" after a role tag is
// encoded together with the text, as tokenizing the rendered template string would do.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/gateway/tokenizer/tokenizer.h"

namespace glm4v::tokenizer {

enum class Role { kSystem, kUser, kAssistant, kObservation };

struct ChatMessage {
  Role role = Role::kUser;
  std::string text;
  // Images attached to this (user) message; their placeholders precede the text.
  int num_images = 0;
  // Written between the role tag and the "\n": a tool-calling assistant turn's function name.
  std::string metadata;
};

struct Prompt {
  std::vector<TokenId> ids;
  // Index in `ids` of each image's <|begin_of_image|>, in order of appearance.
  std::vector<size_t> image_boi_positions;
};

// Special-token text of a role tag, e.g. "<|user|>".
absl::string_view RoleTag(Role role);

class ChatTemplate {
 public:
  // Resolves every special id the template needs; fails if the tokenizer lacks one.
  static absl::StatusOr<ChatTemplate> Create(const Tokenizer* tokenizer);

  // INVALID_ARGUMENT for images on a non-user message or a negative image count.
  absl::StatusOr<Prompt> Build(const std::vector<ChatMessage>& messages,
                               bool add_generation_prompt = true) const;

  // [gMASK]<sop>: what every GLM-4 prompt starts with (a plain completion prompt too).
  std::vector<TokenId> PrefixIds() const { return {gmask_, sop_}; }

  // Ids that end generation: <|endoftext|>, <|user|>, <|observation|>.
  const std::vector<TokenId>& stop_ids() const { return stop_ids_; }

 private:
  explicit ChatTemplate(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  const Tokenizer* tokenizer_;
  TokenId gmask_, sop_, boi_, eoi_, image_pad_;
  TokenId role_ids_[4];
  std::vector<TokenId> newline_ids_;
  std::vector<TokenId> stop_ids_;
};

// Stop ids looked up by name (see ChatTemplate::stop_ids).
absl::StatusOr<std::vector<TokenId>> Glm4StopIds(const Tokenizer& tokenizer);

}  // namespace glm4v::tokenizer
