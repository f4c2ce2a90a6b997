// POST /v1/chat/completions body -> glm4v.v1.GenerateRequest.
//
// Accepted: model, messages (system/developer/user/assistant/tool; content as a string or an
// array of text and image_url parts with data URLs), stream, stream_options.include_usage,
// max_tokens / max_completion_tokens, temperature, top_p, seed, stop, n (only 1), logprobs,
// top_logprobs, and the extensions top_k, repetition_penalty, ignore_eos, stop_token_ids.
// Rejected with 400: non-zero frequency/presence penalties (the sampler has no such penalty;
// repetition_penalty is the supported alternative), tools, non-text response formats, logit_bias.
// Unknown fields are ignored, as OpenAI-compatible servers commonly do.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"

namespace glm4v::openai {

struct ChatCompletionRequest {
  glm4v::v1::GenerateRequest generate;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  // Alternatives per token the caller asked for (the proto asks for at least 1 whenever
  // logprobs is on, because 0 there means "no logprobs at all").
  int top_logprobs = 0;
};

struct ChatRequestLimits {
  // Requests naming another model get 404 model_not_found; an absent model is accepted.
  std::string model_name;
};

// True on success. On failure fills `error` (400 naming the field, or 404 for the model) and
// leaves `out` unspecified. Never throws, whatever the bytes.
bool ParseChatCompletionRequest(absl::string_view body, const ChatRequestLimits& limits,
                                ChatCompletionRequest* out, OpenAiError* error);

}  // namespace glm4v::openai
