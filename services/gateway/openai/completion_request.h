// POST /v1/completions body -> one glm4v.v1.GenerateRequest per prompt.
//
// prompt: a string, an array of strings, an array of token ids, or an array of such arrays
// (each entry is a prompt of its own, with n choices each; choice index = prompt * n + k). A
// string continues [gMASK]<sop> + its text (no chat template); token ids are taken as they are.
// logprobs: an integer 0..5 (the chosen token's logprob plus that many alternatives), in the
// legacy {tokens, token_logprobs, top_logprobs, text_offset} shape. The common fields of
// request_fields.h apply. Rejected with 400: echo true, a non-empty suffix, best_of other
// than n.
#pragma once

#include <vector>

#include "absl/strings/string_view.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"
#include "services/gateway/openai/request_fields.h"

namespace glm4v::openai {

struct CompletionRequest : CommonRequest {
  std::vector<glm4v::v1::GenerateRequest> prompts;
  int logprobs = -1;  // -1: none; else alternatives per token (0..5)
};

// Most prompts one request may carry (each becomes n sequences).
inline constexpr int kMaxCompletionPrompts = 16;

bool ParseCompletionRequest(absl::string_view body, const RequestLimits& limits,
                            CompletionRequest* out, OpenAiError* error);

}  // namespace glm4v::openai
