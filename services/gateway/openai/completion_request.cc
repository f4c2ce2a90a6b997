#include "services/gateway/openai/completion_request.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {
namespace {

using nlohmann::json;

constexpr int64_t kMaxLegacyLogprobs = 5;

class Parser : public RequestFieldParser {
 public:
  Parser(const RequestLimits& limits, CompletionRequest* out, OpenAiError* err)
      : RequestFieldParser(limits, err), out_(out) {}

  bool Parse(const json& root) {
    if (!root.is_object()) return Fail("request body must be a JSON object", "");
    if (!ParseModel(root)) return false;
    if (!ParseCommon(root, out_)) return false;
    glm4v::v1::SamplingParams sampling;
    if (!ParseSampling(root, &sampling)) return false;
    if (!ParseUnsupported(root)) return false;
    if (!ParseLogprobs(root, &sampling)) return false;
    if (!ParsePrompts(root)) return false;
    for (glm4v::v1::GenerateRequest& prompt : out_->prompts) *prompt.mutable_sampling() = sampling;
    return true;
  }

 private:
  bool ParseUnsupported(const json& root) {
    bool echo = false;
    if (!GetBool(root, "echo", &echo)) return false;
    if (echo) return Fail("'echo' is not supported by this server", "echo");
    if (const json* suffix = Field(root, "suffix"); suffix != nullptr) {
      if (!suffix->is_string()) return TypeError("suffix", "a string");
      if (!suffix->get_ref<const std::string&>().empty()) {
        return Fail("'suffix' (insertion) is not supported by GLM-4", "suffix");
      }
    }
    int64_t best_of = 0;
    bool present = false;
    if (!GetInteger(root, "best_of", 1, std::numeric_limits<int32_t>::max(), &best_of, &present)) {
      return false;
    }
    if (present && best_of != out_->n) {
      return Fail("'best_of' other than 'n' is not supported", "best_of");
    }
    return true;
  }

  bool ParseLogprobs(const json& root, glm4v::v1::SamplingParams* sampling) {
    int64_t k = 0;
    bool present = false;
    if (!GetInteger(root, "logprobs", 0, kMaxLegacyLogprobs, &k, &present)) return false;
    if (!present) return true;
    out_->logprobs = static_cast<int>(k);
    sampling->set_logprobs(true);
    sampling->set_top_logprobs(static_cast<uint32_t>(k));
    return true;
  }

  // One token-id prompt; `param` names it in errors.
  bool AddIds(const json& ids, const std::string& param) {
    if (ids.empty()) return Fail(absl::StrCat("'", param, "' must not be empty"), param);
    glm4v::v1::GenerateRequest request;
    for (size_t i = 0; i < ids.size(); ++i) {
      const json& id = ids[i];
      if (!id.is_number_unsigned() || id.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return TypeError(absl::StrCat(param, "[", i, "]"), "a non-negative token id");
      }
      request.add_prompt_token_ids(static_cast<uint32_t>(id.get<uint64_t>()));
    }
    out_->prompts.push_back(std::move(request));
    return true;
  }

  bool AddText(const json& text, const std::string& param) {
    if (text.get_ref<const std::string&>().empty()) {
      return Fail(absl::StrCat("'", param, "' must not be empty"), param);
    }
    glm4v::v1::GenerateRequest request;
    request.set_prompt(text.get<std::string>());
    out_->prompts.push_back(std::move(request));
    return true;
  }

  bool ParsePrompts(const json& root) {
    const json* prompt = Field(root, "prompt");
    if (prompt == nullptr) return Fail("'prompt' is required", "prompt");
    if (prompt->is_string()) return AddText(*prompt, "prompt");
    if (!prompt->is_array() || prompt->empty()) {
      return TypeError("prompt", "a string, an array of strings, or token ids");
    }
    // A flat array of integers is one tokenized prompt.
    if ((*prompt)[0].is_number()) return AddIds(*prompt, "prompt");
    if (prompt->size() > static_cast<size_t>(kMaxCompletionPrompts)) {
      return Fail(absl::StrCat("at most ", kMaxCompletionPrompts, " prompts per request"), "prompt");
    }
    for (size_t i = 0; i < prompt->size(); ++i) {
      const json& entry = (*prompt)[i];
      const std::string param = absl::StrCat("prompt[", i, "]");
      if (entry.is_string()) {
        if (!AddText(entry, param)) return false;
      } else if (entry.is_array()) {
        if (!AddIds(entry, param)) return false;
      } else {
        return TypeError(param, "a string or an array of token ids");
      }
    }
    if (out_->prompts.size() * out_->n > static_cast<size_t>(kMaxCompletionPrompts) * 4) {
      return Fail("too many sequences: prompts x n must be at most 64", "n");
    }
    return true;
  }

  CompletionRequest* out_;
};

}  // namespace

bool ParseCompletionRequest(absl::string_view body, const RequestLimits& limits,
                            CompletionRequest* out, OpenAiError* error) {
  *out = CompletionRequest();
  const json root = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    *error = InvalidRequest("request body is not valid JSON", "");
    return false;
  }
  Parser parser(limits, out, error);
  return parser.Parse(root);
}

}  // namespace glm4v::openai
