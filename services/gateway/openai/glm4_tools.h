// Function calling in GLM-4-9B-chat's own format.
//
// Prompt: the tools go into a first system message, as the model was trained:
//   <|system|>\n<GLM-4 preamble>\n\n# 可用工具\n\n## NAME\n\n<function JSON, indent 4>\n
//   在调用上述函数时，请使用 Json 格式表示调用的参数。   (per tool)
// A past call is an assistant turn whose metadata is the function name and whose content is
// the JSON arguments (<|assistant|>NAME\n{...}); its result an observation turn.
// Output: a call is "NAME\n{JSON arguments}" right after <|assistant|> (an ordinary answer
// starts with "\n"), then the model stops at <|observation|>.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {

// `functions`: each tool's "function" object in the caller's key order.
std::string Glm4ToolsSystemPrompt(const std::vector<nlohmann::ordered_json>& functions);

struct ToolCall {
  std::string name;
  std::string arguments;  // JSON text
};

// The call in a completion's text when it names one of `tool_names` and its arguments are a
// JSON object; nullopt for an ordinary answer.
std::optional<ToolCall> ParseGlm4ToolCall(absl::string_view text,
                                          const std::vector<std::string>& tool_names);

// The call a completion made under a forced tool_choice: the prompt ended with "NAME\n", so the
// whole text is the arguments (passed on as generated, as OpenAI does, even when not valid JSON).
ToolCall ForcedToolCall(const std::string& name, absl::string_view text);

// Whether a streamed completion that begins with `prefix` can still turn out to be a tool
// call (an ordinary answer starts with "\n"; a call with a name character).
bool MayBeToolCall(absl::string_view prefix);

// OpenAI's function-name alphabet: 1-64 of [A-Za-z0-9_-].
bool ValidFunctionName(absl::string_view name);

}  // namespace glm4v::openai
