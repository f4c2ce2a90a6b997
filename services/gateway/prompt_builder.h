// Turns a validated GenerateRequest into prompt ids with image placeholders: the GLM-4V chat
// template over `messages` (user text in ordinary mode, so it cannot forge role tokens), a plain
// `prompt` after [gMASK]<sop> (completions), or the caller's own `prompt_token_ids` + `images`
// after checking them against the model.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/tokenizer/chat_template.h"
#include "services/gateway/tokenizer/tokenizer.h"

namespace glm4v {

struct BuiltPrompt {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> boi_positions;       // one per image, ascending
  std::vector<const v1::ImagePart*> images;  // into the request, in placeholder order
  int spliced_length = 0;                    // rows after the image splice
};

class PromptBuilder {
 public:
  // Nothing owned; all must outlive the builder.
  PromptBuilder(const tokenizer::Tokenizer* tokenizer, const tokenizer::ChatTemplate* chat,
                const ModelConfig* config, int max_prompt_tokens)
      : tokenizer_(tokenizer),
        chat_(chat),
        config_(config),
        max_prompt_tokens_(max_prompt_tokens) {}

  // INVALID_ARGUMENT: ids outside the vocabulary, placeholders that do not match the images,
  // or a prompt longer than max_prompt_tokens after the splice, or one that leaves no room for
  // a generated token in `context_length` (the workers' max_model_len; 0: unknown, unchecked).
  absl::StatusOr<BuiltPrompt> Build(const v1::GenerateRequest& request,
                                    int context_length = 0) const;

 private:
  absl::Status FromMessages(const v1::GenerateRequest& request, BuiltPrompt* out) const;
  absl::Status FromIds(const v1::GenerateRequest& request, BuiltPrompt* out) const;
  absl::Status FromText(const v1::GenerateRequest& request, BuiltPrompt* out) const;

  const tokenizer::Tokenizer* tokenizer_;
  const tokenizer::ChatTemplate* chat_;
  const ModelConfig* config_;
  const int max_prompt_tokens_;
};

}  // namespace glm4v
