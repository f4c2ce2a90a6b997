#include "services/gateway/prompt_builder.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

tokenizer::Role ToTemplateRole(v1::Role role) {
  switch (role) {
    case v1::ROLE_SYSTEM:
      return tokenizer::Role::kSystem;
    case v1::ROLE_ASSISTANT:
      return tokenizer::Role::kAssistant;
    case v1::ROLE_OBSERVATION:
      return tokenizer::Role::kObservation;
    default:
      return tokenizer::Role::kUser;
  }
}

}  // namespace

absl::StatusOr<BuiltPrompt> PromptBuilder::Build(const v1::GenerateRequest& request,
                                                 int context_length) const {
  BuiltPrompt out;
  if (request.prompt_token_ids_size() > 0) {
    RETURN_IF_ERROR(FromIds(request, &out));
  } else if (!request.prompt().empty()) {
    RETURN_IF_ERROR(FromText(request, &out));
  } else {
    RETURN_IF_ERROR(FromMessages(request, &out));
  }
  const int64_t rows_per_image = config_->has_vision ? config_->vision.feature_rows() : 0;
  const int64_t spliced = static_cast<int64_t>(out.ids.size()) +
                          static_cast<int64_t>(out.images.size()) * (rows_per_image - 3);
  if (spliced > max_prompt_tokens_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt is ", spliced, " tokens (",
                                                   out.images.size(), " images of ", rows_per_image,
                                                   " rows); the limit is ", max_prompt_tokens_));
  }
  if (context_length > 0 && spliced >= context_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt is ", spliced, " tokens; the served context length is ", context_length,
        " tokens (the model's seq_length capped by the decoder workers' KV capacity), so a "
        "prompt may have at most ", context_length - 1));
  }
  out.spliced_length = static_cast<int>(spliced);
  return out;
}

absl::Status PromptBuilder::FromMessages(const v1::GenerateRequest& request,
                                         BuiltPrompt* out) const {
  std::vector<tokenizer::ChatMessage> messages;
  for (const v1::ChatMessage& message : request.messages()) {
    tokenizer::ChatMessage m;
    m.role = ToTemplateRole(message.role());
    m.metadata = message.metadata();
    for (const v1::ContentPart& part : message.content()) {
      if (part.has_image()) {
        ++m.num_images;
        out->images.push_back(&part.image());
      } else {
        m.text += part.text();
      }
    }
    messages.push_back(std::move(m));
  }
  ASSIGN_OR_RETURN(tokenizer::Prompt prompt, chat_->Build(messages));
  out->ids.assign(prompt.ids.begin(), prompt.ids.end());
  if (!request.assistant_prefix().empty()) {
    // Ordinary text, as message text is: special-token names in it are characters.
    ASSIGN_OR_RETURN(std::vector<tokenizer::TokenId> prefix,
                     tokenizer_->EncodeOrdinary(request.assistant_prefix()));
    out->ids.insert(out->ids.end(), prefix.begin(), prefix.end());
  }
  for (size_t pos : prompt.image_boi_positions) out->boi_positions.push_back(pos);
  if (out->boi_positions.size() != out->images.size()) {
    return absl::InternalError("chat template placed a different number of images");
  }
  return absl::OkStatus();
}

absl::Status PromptBuilder::FromText(const v1::GenerateRequest& request, BuiltPrompt* out) const {
  // Ordinary text: "<|user|>" in a completion prompt is characters, not the role token.
  ASSIGN_OR_RETURN(std::vector<tokenizer::TokenId> text, tokenizer_->EncodeOrdinary(request.prompt()));
  for (tokenizer::TokenId id : chat_->PrefixIds()) out->ids.push_back(id);
  for (tokenizer::TokenId id : text) out->ids.push_back(id);
  return absl::OkStatus();
}

absl::Status PromptBuilder::FromIds(const v1::GenerateRequest& request, BuiltPrompt* out) const {
  const int n = request.prompt_token_ids_size();
  for (int i = 0; i < n; ++i) {
    const uint32_t id = request.prompt_token_ids(i);
    if (id >= static_cast<uint32_t>(config_->padded_vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat("prompt_token_ids[", i, "] = ", id,
                                                     " is outside the vocabulary (",
                                                     config_->padded_vocab_size, ")"));
    }
    if (static_cast<int>(id) == config_->boi_token_id) {
      if (i + 2 >= n ||
          static_cast<int>(request.prompt_token_ids(i + 2)) != config_->eoi_token_id) {
        return absl::InvalidArgumentError(
            absl::StrCat("prompt_token_ids[", i,
                         "] begins an image but is not followed by a placeholder "
                         "and <|end_of_image|>"));
      }
      out->boi_positions.push_back(i);
    }
    out->ids.push_back(id);
  }
  if (out->boi_positions.size() != static_cast<size_t>(request.images_size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt_token_ids hold ", out->boi_positions.size(),
                     " image placeholders but ", request.images_size(), " images were sent"));
  }
  for (const v1::ImagePart& image : request.images()) out->images.push_back(&image);
  return absl::OkStatus();
}

}  // namespace glm4v
