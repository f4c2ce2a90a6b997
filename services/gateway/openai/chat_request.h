// POST /v1/chat/completions body -> glm4v.v1.GenerateRequest.
//
// Accepted: model, messages (system/developer/user/assistant/tool; content as a string or an
// array of text and image_url parts; assistant tool_calls), the common fields of
// request_fields.h (stream, n, user, sampling incl. penalties and logit_bias), logprobs,
// top_logprobs, tools / tool_choice ("auto", "none", a named function, "required" with one
// tool) for models trained for them, and response_format {"type": "text"}. Rejected with 400
// naming the field: malformed values, tools on a model without function calling, tool_choice
// "required" with several tools (GLM-4 cannot be made to pick one), legacy `functions`,
// non-text response formats. Unknown fields are ignored,
// as OpenAI's API does.
//
// image_url parts keep their URL: data: URLs are decoded here; http(s) URLs are listed in
// `image_urls` for the server to fetch (see image_fetcher.h) and filled in afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"
#include "services/gateway/openai/request_fields.h"

namespace glm4v::openai {

// An image part whose bytes are still at a remote URL.
struct PendingImageUrl {
  int message = 0;  // index into generate.messages
  int part = 0;     // index into that message's content
  std::string url;
  std::string param;  // the request field, for errors
};

struct ChatCompletionRequest : CommonRequest {
  glm4v::v1::GenerateRequest generate;
  bool logprobs = false;
  // Alternatives per token the caller asked for (the proto asks for at least 1 whenever
  // logprobs is on, because 0 there means "no logprobs at all").
  int top_logprobs = 0;
  // Function names offered with tool_choice "auto": completions are parsed for calls.
  std::vector<std::string> tool_names;
  // tool_choice naming a function (or "required" with one tool): every completion is its call.
  std::string forced_tool;
  std::vector<PendingImageUrl> image_urls;
};

using ChatRequestLimits = RequestLimits;

// True on success. On failure fills `error` (400 naming the field, or 404 for the model) and
// leaves `out` unspecified. Never throws, whatever the bytes.
bool ParseChatCompletionRequest(absl::string_view body, const ChatRequestLimits& limits,
                                ChatCompletionRequest* out, OpenAiError* error);

}  // namespace glm4v::openai
