#include "services/gateway/request_validator.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace glm4v {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status ValidateImage(const v1::ImagePart& image, absl::string_view field,
                           const GatewayOptions& options) {
  if (image.data().empty()) return Invalid(field, "image data is empty");
  if (static_cast<int64_t>(image.data().size()) > options.max_image_bytes) {
    return Invalid(field, absl::StrCat("image is ", image.data().size(), " bytes; the limit is ",
                                       options.max_image_bytes));
  }
  if (!image.mime_type().empty() && image.mime_type() != "image/png" &&
      image.mime_type() != "image/jpeg") {
    return Invalid(field, absl::StrCat("unsupported mime_type '", image.mime_type(),
                                       "' (image/png or image/jpeg)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMessages(const v1::GenerateRequest& request, const GatewayOptions& options,
                              int* images) {
  if (request.messages_size() > options.max_messages) {
    return Invalid("messages", absl::StrCat(request.messages_size(), " messages; the limit is ",
                                            options.max_messages));
  }
  int64_t text_bytes = 0;
  bool has_user = false;
  for (int m = 0; m < request.messages_size(); ++m) {
    const v1::ChatMessage& message = request.messages(m);
    const std::string field = absl::StrCat("messages[", m, "]");
    if (message.role() < v1::ROLE_SYSTEM || message.role() > v1::ROLE_OBSERVATION) {
      return Invalid(field + ".role", "role must be system, user, assistant or observation");
    }
    has_user |= message.role() == v1::ROLE_USER;
    if (!message.metadata().empty()) {
      if (message.role() != v1::ROLE_ASSISTANT) {
        return Invalid(field + ".metadata", "only assistant messages carry metadata");
      }
      if (message.metadata().size() > 256 ||
          message.metadata().find('\n') != std::string::npos) {
        return Invalid(field + ".metadata", "at most 256 bytes on one line (a function name)");
      }
    }
    if (message.content_size() == 0) return Invalid(field + ".content", "no content parts");
    for (int p = 0; p < message.content_size(); ++p) {
      const v1::ContentPart& part = message.content(p);
      const std::string part_field = absl::StrCat(field, ".content[", p, "]");
      switch (part.part_case()) {
        case v1::ContentPart::kText:
          text_bytes += part.text().size();
          break;
        case v1::ContentPart::kImage:
          if (message.role() != v1::ROLE_USER) {
            return Invalid(part_field, "images are allowed in user messages only");
          }
          if (absl::Status s = ValidateImage(part.image(), part_field, options); !s.ok()) return s;
          ++*images;
          break;
        default:
          return Invalid(part_field, "empty content part (neither text nor image)");
      }
    }
  }
  if (!has_user) return Invalid("messages", "at least one user message is required");
  if (text_bytes > options.max_text_bytes) {
    return Invalid("messages", absl::StrCat("text is ", text_bytes, " bytes; the limit is ",
                                            options.max_text_bytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateSampling(const v1::SamplingParams& s, const GatewayOptions& options) {
  if (s.has_max_tokens() && (s.max_tokens() < 1 || s.max_tokens() > options.max_max_tokens)) {
    return Invalid("sampling.max_tokens",
                   absl::StrCat(s.max_tokens(), " is outside [1, ", options.max_max_tokens, "]"));
  }
  if (s.has_temperature() && !(s.temperature() >= 0 && std::isfinite(s.temperature()))) {
    return Invalid("sampling.temperature", absl::StrCat(s.temperature(), " must be >= 0"));
  }
  if (s.has_top_p() && !(s.top_p() > 0 && s.top_p() <= 1)) {
    return Invalid("sampling.top_p", absl::StrCat(s.top_p(), " must be in (0, 1]"));
  }
  if (s.has_repetition_penalty() &&
      !(s.repetition_penalty() > 0 && std::isfinite(s.repetition_penalty()))) {
    return Invalid("sampling.repetition_penalty",
                   absl::StrCat(s.repetition_penalty(), " must be > 0"));
  }
  if (s.has_presence_penalty() &&
      !(s.presence_penalty() >= -2.0f && s.presence_penalty() <= 2.0f)) {
    return Invalid("sampling.presence_penalty",
                   absl::StrCat(s.presence_penalty(), " is outside [-2, 2]"));
  }
  if (s.has_frequency_penalty() &&
      !(s.frequency_penalty() >= -2.0f && s.frequency_penalty() <= 2.0f)) {
    return Invalid("sampling.frequency_penalty",
                   absl::StrCat(s.frequency_penalty(), " is outside [-2, 2]"));
  }
  if (s.logit_bias_size() > options.max_logit_bias_entries) {
    return Invalid("sampling.logit_bias", absl::StrCat(s.logit_bias_size(), " entries; the limit is ",
                                                        options.max_logit_bias_entries));
  }
  for (const auto& [id, bias] : s.logit_bias()) {
    const std::string field = absl::StrCat("sampling.logit_bias[", id, "]");
    if (options.vocab_size > 0 && id >= static_cast<uint32_t>(options.vocab_size)) {
      return Invalid(field, absl::StrCat("token id outside the vocabulary (", options.vocab_size,
                                         ")"));
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return Invalid(field, absl::StrCat(bias, " is outside [-100, 100]"));
    }
  }
  if (s.top_logprobs() > options.max_top_logprobs) {
    return Invalid("sampling.top_logprobs",
                   absl::StrCat(s.top_logprobs(), " exceeds ", options.max_top_logprobs));
  }
  if (s.stop_size() > options.max_stop_strings) {
    return Invalid("sampling.stop", absl::StrCat(s.stop_size(), " stop strings; the limit is ",
                                                 options.max_stop_strings));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || static_cast<int>(s.stop(i).size()) > options.max_stop_string_bytes) {
      return Invalid(absl::StrCat("sampling.stop[", i, "]"),
                     absl::StrCat("must be 1..", options.max_stop_string_bytes, " bytes"));
    }
  }
  if (s.stop_token_ids_size() > options.max_stop_token_ids) {
    return Invalid(
        "sampling.stop_token_ids",
        absl::StrCat(s.stop_token_ids_size(), " ids; the limit is ", options.max_stop_token_ids));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request,
                                     const GatewayOptions& options) {
  const bool has_messages = request.messages_size() > 0;
  const bool has_ids = request.prompt_token_ids_size() > 0;
  const bool has_text = !request.prompt().empty();
  if (int(has_messages) + int(has_ids) + int(has_text) != 1) {
    return Invalid("messages", "exactly one of messages, prompt_token_ids and prompt must be set");
  }
  if (!request.assistant_prefix().empty()) {
    if (!has_messages) {
      return Invalid("assistant_prefix", "goes with messages (the chat template's assistant turn)");
    }
    if (static_cast<int64_t>(request.assistant_prefix().size()) > options.max_text_bytes) {
      return Invalid("assistant_prefix",
                     absl::StrCat("text is ", request.assistant_prefix().size(),
                                  " bytes; the limit is ", options.max_text_bytes));
    }
  }
  int images = 0;
  if (has_text) {
    if (request.images_size() > 0) {
      return Invalid("images", "a plain-text prompt takes no images; use messages");
    }
    if (static_cast<int64_t>(request.prompt().size()) > options.max_text_bytes) {
      return Invalid("prompt", absl::StrCat("text is ", request.prompt().size(),
                                            " bytes; the limit is ", options.max_text_bytes));
    }
  } else if (has_messages) {
    if (request.images_size() > 0) {
      return Invalid("images",
                     "top-level images go with prompt_token_ids; put images in "
                     "message content instead");
    }
    if (absl::Status s = ValidateMessages(request, options, &images); !s.ok()) return s;
  } else {
    if (request.prompt_token_ids_size() > options.max_prompt_tokens) {
      return Invalid("prompt_token_ids",
                     absl::StrCat(request.prompt_token_ids_size(), " ids; the limit is ",
                                  options.max_prompt_tokens, " prompt tokens"));
    }
    for (int i = 0; i < request.images_size(); ++i) {
      absl::Status s = ValidateImage(request.images(i), absl::StrCat("images[", i, "]"), options);
      if (!s.ok()) return s;
    }
    images = request.images_size();
  }
  if (images > 0 && !options.accepts_images) {
    return Invalid("images", absl::StrCat("model '", options.model_name,
                                          "' is text-only (its checkpoint has no vision tower) "
                                          "and takes no images; ",
                                          images, " were sent"));
  }
  if (images > options.max_images_per_request) {
    return Invalid("images", absl::StrCat(images, " images; the limit is ",
                                          options.max_images_per_request, " per request"));
  }
  return ValidateSampling(request.sampling(), options);
}

}  // namespace glm4v
