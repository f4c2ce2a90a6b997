// Checks a public GenerateRequest against the gateway's limits before any work is done.
#pragma once

#include "absl/status/status.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/gateway_options.h"

namespace glm4v {

// INVALID_ARGUMENT naming the field and the limit: message/role structure, image count and
// sizes, text size, sampling ranges (temperature >= 0, top_p in (0, 1], repetition_penalty > 0,
// 1 <= max_tokens <= limit, top_logprobs), stop strings and ids. Prompt length is checked after
// tokenization (see PromptBuilder).
absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request,
                                     const GatewayOptions& options);

}  // namespace glm4v
