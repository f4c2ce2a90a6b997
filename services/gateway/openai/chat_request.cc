#include "services/gateway/openai/chat_request.h"

#include <cmath>
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/gateway/openai/data_url.h"
#include "services/gateway/openai/glm4_tools.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;

// Largest top_logprobs OpenAI accepts.
constexpr int64_t kMaxTopLogprobs = 20;

// Each parser step reports the first problem through `err` and returns false.
class Parser : public RequestFieldParser {
 public:
  Parser(const ChatRequestLimits& limits, absl::string_view body, ChatCompletionRequest* out,
         OpenAiError* err)
      : RequestFieldParser(limits, err), limits_(limits), body_(body), out_(out) {}

  bool Parse(const json& root) {
    if (!root.is_object()) return Fail("request body must be a JSON object", "");
    if (!ParseModel(root)) return false;
    if (!ParseTools(root)) return false;
    if (!ParseMessages(root)) return false;
    if (!ParseCommon(root, out_)) return false;
    if (!ParseSampling(root, out_->generate.mutable_sampling())) return false;
    if (!ParseLogprobs(root)) return false;
    return ParseResponseFormat(root);
  }

 private:
  bool ParseRole(const json& msg, const std::string& param, glm4v::v1::Role* role) {
    const json* r = Field(msg, "role");
    if (r == nullptr) return Fail(absl::StrCat("'", param, "' is required"), param);
    if (!r->is_string()) return TypeError(param, "a string");
    const std::string& s = r->get_ref<const std::string&>();
    // "developer" is OpenAI's newer name for system; tool results are GLM's observations.
    if (s == "system" || s == "developer") {
      *role = glm4v::v1::ROLE_SYSTEM;
    } else if (s == "user") {
      *role = glm4v::v1::ROLE_USER;
    } else if (s == "assistant") {
      *role = glm4v::v1::ROLE_ASSISTANT;
    } else if (s == "tool") {
      *role = glm4v::v1::ROLE_OBSERVATION;
    } else {
      return Fail(absl::StrCat("'", param, "' must be one of system, developer, user, "
                               "assistant, tool; got '", s, "'"),
                  param);
    }
    return true;
  }

  bool ParseImagePart(const json& part, const std::string& param,
                      glm4v::v1::ChatMessage* message) {
    const json* image_url = Field(part, "image_url");
    const std::string url_param = absl::StrCat(param, ".image_url.url");
    const json* url = nullptr;
    if (image_url == nullptr) {
      return Fail(absl::StrCat("'", param, ".image_url' is required"), param + ".image_url");
    }
    // The spec says {"url": ...}; a bare string is a common client shortcut.
    if (image_url->is_string()) {
      url = image_url;
    } else if (image_url->is_object()) {
      url = Field(*image_url, "url");
      if (url == nullptr) return Fail(absl::StrCat("'", url_param, "' is required"), url_param);
      if (!url->is_string()) return TypeError(url_param, "a string");
    } else {
      return TypeError(param + ".image_url", "an object with a 'url'");
    }
    const std::string& text = url->get_ref<const std::string&>();
    if (absl::StartsWithIgnoreCase(text, "http://") ||
        absl::StartsWithIgnoreCase(text, "https://")) {
      // Fetched by the server after parsing; the part waits empty until then.
      out_->image_urls.push_back({out_->generate.messages_size() - 1, message->content_size(),
                                  text, url_param});
      message->add_content()->mutable_image();
      return true;
    }
    auto image = DecodeImageUrl(text);
    if (!image.ok()) {
      return Fail(absl::StrCat(url_param, ": ", image.status().message()), url_param);
    }
    glm4v::v1::ImagePart* out = message->add_content()->mutable_image();
    out->set_data(std::move(image->bytes));
    out->set_mime_type(std::move(image->mime_type));
    return true;
  }

  bool ParseContent(const json& msg, const std::string& param, glm4v::v1::Role role,
                    glm4v::v1::ChatMessage* message) {
    const json* content = Field(msg, "content");
    const std::string content_param = param + ".content";
    if (content == nullptr) {
      // Assistant turns that only carried tool calls have null content.
      if (role == glm4v::v1::ROLE_ASSISTANT) return true;
      return Fail(absl::StrCat("'", content_param, "' is required"), content_param);
    }
    if (content->is_string()) {
      message->add_content()->set_text(content->get<std::string>());
      return true;
    }
    if (!content->is_array()) return TypeError(content_param, "a string or an array of parts");
    for (size_t j = 0; j < content->size(); ++j) {
      const json& part = (*content)[j];
      const std::string part_param = absl::StrCat(content_param, "[", j, "]");
      if (!part.is_object()) return TypeError(part_param, "an object");
      const json* type = Field(part, "type");
      if (type == nullptr || !type->is_string()) {
        return TypeError(part_param + ".type", "a string (\"text\" or \"image_url\")");
      }
      const std::string& t = type->get_ref<const std::string&>();
      if (t == "text") {
        const json* text = Field(part, "text");
        if (text == nullptr || !text->is_string()) return TypeError(part_param + ".text", "a string");
        message->add_content()->set_text(text->get<std::string>());
      } else if (t == "image_url") {
        if (!ParseImagePart(part, part_param, message)) return false;
      } else {
        return Fail(absl::StrCat("unsupported content part type '", t,
                                 "'; expected \"text\" or \"image_url\""),
                    part_param + ".type");
      }
    }
    return true;
  }

  bool ParseMessages(const json& root) {
    const json* messages = Field(root, "messages");
    if (messages == nullptr) return Fail("'messages' is required", "messages");
    if (!messages->is_array()) return TypeError("messages", "an array");
    if (messages->empty()) return Fail("'messages' must not be empty", "messages");
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& msg = (*messages)[i];
      const std::string param = absl::StrCat("messages[", i, "]");
      if (!msg.is_object()) return TypeError(param, "an object");
      glm4v::v1::ChatMessage* message = out_->generate.add_messages();
      glm4v::v1::Role role = glm4v::v1::ROLE_UNSPECIFIED;
      if (!ParseRole(msg, param + ".role", &role)) return false;
      message->set_role(role);
      if (!ParseContent(msg, param, role, message)) return false;
      if (role == glm4v::v1::ROLE_ASSISTANT && Field(msg, "tool_calls") != nullptr) {
        // The calls are turns of their own; an empty text turn before them is dropped.
        if (message->content_size() == 0) out_->generate.mutable_messages()->RemoveLast();
        if (!ParseToolCalls(msg, param)) return false;
      }
    }
    return true;
  }

  bool ParseLogprobs(const json& root) {
    if (!GetBool(root, "logprobs", &out_->logprobs)) return false;
    int64_t top = 0;
    bool present = false;
    if (!GetInteger(root, "top_logprobs", 0, kMaxTopLogprobs, &top, &present)) return false;
    if (present && !out_->logprobs) {
      return Fail("'logprobs' must be true when 'top_logprobs' is set", "top_logprobs");
    }
    out_->top_logprobs = static_cast<int>(top);
    if (out_->logprobs) {
      out_->generate.mutable_sampling()->set_logprobs(true);
      out_->generate.mutable_sampling()->set_top_logprobs(
          static_cast<uint32_t>(std::max<int64_t>(top, 1)));
    }
    return true;
  }

  bool ParseResponseFormat(const json& root) {
    const json* format = Field(root, "response_format");
    if (format != nullptr) {
      const json* type = format->is_object() ? Field(*format, "type") : nullptr;
      if (type == nullptr || !type->is_string() || type->get_ref<const std::string&>() != "text") {
        return Fail("only response_format {\"type\": \"text\"} is supported", "response_format");
      }
    }
    return true;
  }

  // tools + tool_choice -> a first system message in GLM-4's format.
  bool ParseTools(const json& root) {
    if (Field(root, "functions") != nullptr || Field(root, "function_call") != nullptr) {
      return Fail("legacy 'functions' are not supported; send 'tools'", "functions");
    }
    const json* tools = Field(root, "tools");
    std::string choice = "auto";
    std::string forced;  // the function tool_choice names
    if (const json* c = Field(root, "tool_choice"); c != nullptr) {
      if (c->is_object()) {
        const json* type = Field(*c, "type");
        const json* function = Field(*c, "function");
        const json* name =
            function != nullptr && function->is_object() ? Field(*function, "name") : nullptr;
        if (type == nullptr || *type != "function" || name == nullptr || !name->is_string()) {
          return Fail("'tool_choice' naming a function must be {\"type\": \"function\", "
                      "\"function\": {\"name\": NAME}}",
                      "tool_choice");
        }
        choice = "function";
        forced = name->get<std::string>();
      } else if (c->is_string()) {
        choice = c->get<std::string>();
        if (choice != "auto" && choice != "none" && choice != "required") {
          return Fail("'tool_choice' must be \"auto\", \"none\", \"required\" or an object "
                      "naming a function",
                      "tool_choice");
        }
      } else {
        return TypeError("tool_choice", "a string or an object naming a function");
      }
    }
    if (tools == nullptr || (tools->is_array() && tools->empty())) {
      if (choice == "required" || choice == "function") {
        return Fail(absl::StrCat("tool_choice '", choice, "' needs 'tools'"), "tool_choice");
      }
      return true;
    }
    if (!tools->is_array()) return TypeError("tools", "an array");
    if (!limits_.accepts_tools) {
      return Fail(absl::StrCat("model '", limits_.model_name,
                               "' was not trained for function calling; 'tools' need a "
                               "GLM-4-9B-chat model"),
                  "tools");
    }
    // Key order matters to the model (it saw Python's json.dumps): read the tools again,
    // order-preserving.
    const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(
        body_.begin(), body_.end(), nullptr, /*allow_exceptions=*/false);
    std::vector<nlohmann::ordered_json> functions;
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string param = absl::StrCat("tools[", i, "]");
      const json& tool = (*tools)[i];
      if (!tool.is_object()) return TypeError(param, "an object");
      const json* type = Field(tool, "type");
      if (type == nullptr || *type != "function") {
        return Fail(absl::StrCat("'", param, ".type' must be \"function\""), param + ".type");
      }
      const json* function = Field(tool, "function");
      if (function == nullptr || !function->is_object()) {
        return TypeError(param + ".function", "an object");
      }
      const json* name = Field(*function, "name");
      if (name == nullptr || !name->is_string() ||
          !ValidFunctionName(name->get_ref<const std::string&>())) {
        return TypeError(param + ".function.name", "1-64 characters of a-z, A-Z, 0-9, _ and -");
      }
      if (const json* p = Field(*function, "parameters"); p != nullptr && !p->is_object()) {
        return TypeError(param + ".function.parameters", "a JSON Schema object");
      }
      if (const json* d = Field(*function, "description"); d != nullptr && !d->is_string()) {
        return TypeError(param + ".function.description", "a string");
      }
      const std::string& n = name->get_ref<const std::string&>();
      if (std::find(out_->tool_names.begin(), out_->tool_names.end(), n) !=
          out_->tool_names.end()) {
        return Fail(absl::StrCat("function '", n, "' is listed twice"), param + ".function.name");
      }
      out_->tool_names.push_back(n);
      functions.push_back(ordered["tools"][i]["function"]);
    }
    if (choice == "none") {
      out_->tool_names.clear();
      return true;
    }
    if (choice == "required") {
      // GLM-4 is made to call a tool by starting its turn with the tool's name; which of several
      // to call it cannot be made to choose without constrained decoding.
      if (out_->tool_names.size() != 1) {
        return Fail(absl::StrCat("tool_choice 'required' with ", out_->tool_names.size(),
                                 " tools is not supported (GLM-4 cannot be made to pick one "
                                 "of several); name the function, or offer one tool"),
                    "tool_choice");
      }
      forced = out_->tool_names[0];
    }
    if (!forced.empty()) {
      if (std::find(out_->tool_names.begin(), out_->tool_names.end(), forced) ==
          out_->tool_names.end()) {
        return Fail(absl::StrCat("tool_choice names function '", forced, "', which 'tools' does "
                                 "not offer"),
                    "tool_choice.function.name");
      }
      // GLM-4's call turn is "<|assistant|>NAME\n{arguments}": the prompt ends with the name,
      // the model writes the arguments.
      out_->forced_tool = forced;
      out_->generate.set_assistant_prefix(forced + "\n");
    }
    glm4v::v1::ChatMessage* system = out_->generate.add_messages();
    system->set_role(glm4v::v1::ROLE_SYSTEM);
    system->add_content()->set_text(Glm4ToolsSystemPrompt(functions));
    return true;
  }

  // An assistant turn's tool_calls: one GLM assistant turn per call (name as metadata).
  bool ParseToolCalls(const json& msg, const std::string& param) {
    const json* calls = Field(msg, "tool_calls");
    if (calls == nullptr) return true;
    if (!calls->is_array()) return TypeError(param + ".tool_calls", "an array");
    for (size_t j = 0; j < calls->size(); ++j) {
      const std::string call_param = absl::StrCat(param, ".tool_calls[", j, "]");
      const json& call = (*calls)[j];
      const json* function = call.is_object() ? Field(call, "function") : nullptr;
      if (function == nullptr || !function->is_object()) {
        return TypeError(call_param + ".function", "an object");
      }
      const json* name = Field(*function, "name");
      if (name == nullptr || !name->is_string() ||
          !ValidFunctionName(name->get_ref<const std::string&>())) {
        return TypeError(call_param + ".function.name", "a function name");
      }
      const json* arguments = Field(*function, "arguments");
      if (arguments == nullptr || !arguments->is_string()) {
        return TypeError(call_param + ".function.arguments", "a string of JSON");
      }
      glm4v::v1::ChatMessage* turn = out_->generate.add_messages();
      turn->set_role(glm4v::v1::ROLE_ASSISTANT);
      turn->set_metadata(name->get<std::string>());
      turn->add_content()->set_text(arguments->get<std::string>());
    }
    return true;
  }

  const ChatRequestLimits& limits_;
  absl::string_view body_;
  ChatCompletionRequest* out_;
};

}  // namespace

bool ParseChatCompletionRequest(absl::string_view body, const ChatRequestLimits& limits,
                                ChatCompletionRequest* out, OpenAiError* error) {
  *out = ChatCompletionRequest();
  // Non-throwing parse: malformed bodies come back as a discarded value.
  const json root = json::parse(body.begin(), body.end(), /*cb=*/nullptr,
                                /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    *error = InvalidRequest("request body is not valid JSON", "");
    return false;
  }
  Parser parser(limits, body, out, error);
  return parser.Parse(root);
}

}  // namespace glm4v::openai
