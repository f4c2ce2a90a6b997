#include "services/gateway/openai/glm4_tools.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace glm4v::openai {

std::string Glm4ToolsSystemPrompt(const std::vector<nlohmann::ordered_json>& functions) {
  std::string out =
      "你是一个名为 GLM-4 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
      "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具";
  for (const nlohmann::ordered_json& function : functions) {
    const std::string name = function.value("name", "");
    // The model saw Python's json.dumps(indent=4, ensure_ascii=False): the same layout.
    absl::StrAppend(&out, "\n\n## ", name, "\n\n", function.dump(4),
                    "\n在调用上述函数时，请使用 Json 格式表示调用的参数。");
  }
  return out;
}

std::optional<ToolCall> ParseGlm4ToolCall(absl::string_view text,
                                          const std::vector<std::string>& tool_names) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  const size_t newline = trimmed.find('\n');
  if (newline == absl::string_view::npos) return std::nullopt;
  const std::string name(absl::StripAsciiWhitespace(trimmed.substr(0, newline)));
  const absl::string_view arguments = absl::StripAsciiWhitespace(trimmed.substr(newline + 1));
  if (std::find(tool_names.begin(), tool_names.end(), name) == tool_names.end()) {
    return std::nullopt;
  }
  const nlohmann::json parsed =
      nlohmann::json::parse(arguments.begin(), arguments.end(), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return ToolCall{name, std::string(arguments)};
}

ToolCall ForcedToolCall(const std::string& name, absl::string_view text) {
  return ToolCall{name, std::string(absl::StripAsciiWhitespace(text))};
}

bool MayBeToolCall(absl::string_view prefix) {
  return prefix.empty() || (prefix[0] != '\n' && prefix[0] != ' ');
}

bool ValidFunctionName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace glm4v::openai
