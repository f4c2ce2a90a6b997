#include "services/gateway/openai/chat_request.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/gateway/openai/data_url.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;

// Largest top_logprobs OpenAI accepts.
constexpr int64_t kMaxTopLogprobs = 20;

// Field lookup that treats JSON null like an absent field (OpenAI's SDKs send nulls freely).
const json* Field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// Each parser step reports the first problem through `err` and returns false.
class Parser {
 public:
  Parser(const ChatRequestLimits& limits, ChatCompletionRequest* out, OpenAiError* err)
      : limits_(limits), out_(out), err_(err) {}

  bool Parse(const json& root) {
    if (!root.is_object()) return Fail("request body must be a JSON object", "");
    if (!ParseModel(root)) return false;
    if (!ParseMessages(root)) return false;
    if (!ParseStreaming(root)) return false;
    if (!ParseSampling(root)) return false;
    if (!ParseLogprobs(root)) return false;
    return RejectUnsupported(root);
  }

 private:
  bool Fail(std::string message, std::string param) {
    *err_ = InvalidRequest(std::move(message), std::move(param));
    return false;
  }
  bool TypeError(const std::string& param, const char* expected) {
    return Fail(absl::StrCat("'", param, "' must be ", expected), param);
  }

  bool GetBool(const json& root, const char* name, bool* value, bool* present = nullptr) {
    const json* f = Field(root, name);
    if (present != nullptr) *present = f != nullptr;
    if (f == nullptr) return true;
    if (!f->is_boolean()) return TypeError(name, "a boolean");
    *value = f->get<bool>();
    return true;
  }

  // Finite number; integers are accepted as numbers.
  bool GetNumber(const json& root, const char* name, double* value, bool* present) {
    const json* f = Field(root, name);
    *present = f != nullptr;
    if (f == nullptr) return true;
    if (!f->is_number()) return TypeError(name, "a number");
    *value = f->get<double>();
    if (!std::isfinite(*value)) return TypeError(name, "a finite number");
    return true;
  }

  bool GetInteger(const json& root, const char* name, int64_t lo, int64_t hi, int64_t* value,
                  bool* present) {
    const json* f = Field(root, name);
    *present = f != nullptr;
    if (f == nullptr) return true;
    if (f->is_number_unsigned()) {
      const uint64_t u = f->get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) {
        return Fail(absl::StrCat("'", name, "' must be at most ", hi), name);
      }
      *value = static_cast<int64_t>(u);
    } else if (f->is_number_integer()) {
      *value = f->get<int64_t>();
    } else {
      return TypeError(name, "an integer");
    }
    if (*value < lo || *value > hi) {
      return Fail(absl::StrCat("'", name, "' must be between ", lo, " and ", hi), name);
    }
    return true;
  }

  bool ParseModel(const json& root) {
    const json* model = Field(root, "model");
    if (model == nullptr) return true;
    if (!model->is_string()) return TypeError("model", "a string");
    const std::string& name = model->get_ref<const std::string&>();
    if (!limits_.model_name.empty() && name != limits_.model_name) {
      *err_ = InvalidRequest(absl::StrCat("The model '", name, "' does not exist; this server "
                                          "serves '", limits_.model_name, "'"),
                             "model");
      err_->http_status = 404;
      err_->code = "model_not_found";
      return false;
    }
    return true;
  }

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
    auto image = DecodeImageUrl(url->get_ref<const std::string&>());
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
    }
    return true;
  }

  bool ParseStreaming(const json& root) {
    if (!GetBool(root, "stream", &out_->stream)) return false;
    const json* opts = Field(root, "stream_options");
    if (opts == nullptr) return true;
    if (!opts->is_object()) return TypeError("stream_options", "an object");
    if (!out_->stream) {
      return Fail("'stream_options' is only allowed when 'stream' is true", "stream_options");
    }
    const json* usage = Field(*opts, "include_usage");
    if (usage == nullptr) return true;
    if (!usage->is_boolean()) return TypeError("stream_options.include_usage", "a boolean");
    out_->include_usage = usage->get<bool>();
    return true;
  }

  bool ParseStop(const json& root, glm4v::v1::SamplingParams* sp) {
    const json* stop = Field(root, "stop");
    if (stop == nullptr) return true;
    if (stop->is_string()) {
      sp->add_stop(stop->get<std::string>());
      return true;
    }
    if (!stop->is_array()) return TypeError("stop", "a string or an array of strings");
    for (size_t i = 0; i < stop->size(); ++i) {
      if (!(*stop)[i].is_string()) return TypeError(absl::StrCat("stop[", i, "]"), "a string");
      sp->add_stop((*stop)[i].get<std::string>());
    }
    return true;
  }

  bool ParseStopTokenIds(const json& root, glm4v::v1::SamplingParams* sp) {
    const json* ids = Field(root, "stop_token_ids");
    if (ids == nullptr) return true;
    if (!ids->is_array()) return TypeError("stop_token_ids", "an array of integers");
    for (size_t i = 0; i < ids->size(); ++i) {
      const json& id = (*ids)[i];
      if (!id.is_number_unsigned() || id.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return TypeError(absl::StrCat("stop_token_ids[", i, "]"), "a non-negative token id");
      }
      sp->add_stop_token_ids(static_cast<uint32_t>(id.get<uint64_t>()));
    }
    return true;
  }

  bool ParseSampling(const json& root) {
    glm4v::v1::SamplingParams* sp = out_->generate.mutable_sampling();
    bool present = false;
    int64_t i64 = 0;
    double d = 0;
    constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();

    // max_completion_tokens is the current name; max_tokens the deprecated one.
    if (!GetInteger(root, "max_tokens", 1, kU32Max, &i64, &present)) return false;
    if (present) sp->set_max_tokens(static_cast<uint32_t>(i64));
    if (!GetInteger(root, "max_completion_tokens", 1, kU32Max, &i64, &present)) return false;
    if (present) sp->set_max_tokens(static_cast<uint32_t>(i64));

    if (!GetNumber(root, "temperature", &d, &present)) return false;
    if (present) {
      if (d < 0 || d > 2) return Fail("'temperature' must be between 0 and 2", "temperature");
      sp->set_temperature(static_cast<float>(d));
    }
    if (!GetNumber(root, "top_p", &d, &present)) return false;
    if (present) {
      if (d <= 0 || d > 1) return Fail("'top_p' must be in (0, 1]", "top_p");
      sp->set_top_p(static_cast<float>(d));
    }
    if (!GetInteger(root, "top_k", 0, kU32Max, &i64, &present)) return false;
    if (present) sp->set_top_k(static_cast<uint32_t>(i64));
    if (!GetNumber(root, "repetition_penalty", &d, &present)) return false;
    if (present) {
      if (d <= 0) return Fail("'repetition_penalty' must be positive", "repetition_penalty");
      sp->set_repetition_penalty(static_cast<float>(d));
    }
    // OpenAI seeds are signed 64-bit; keep the bit pattern so every seed stays distinct.
    const json* seed = Field(root, "seed");
    if (seed != nullptr) {
      if (seed->is_number_unsigned()) {
        sp->set_seed(seed->get<uint64_t>());
      } else if (seed->is_number_integer()) {
        sp->set_seed(static_cast<uint64_t>(seed->get<int64_t>()));
      } else {
        return TypeError("seed", "an integer");
      }
    }
    if (!ParseStop(root, sp)) return false;
    if (!ParseStopTokenIds(root, sp)) return false;
    bool ignore_eos = false;
    if (!GetBool(root, "ignore_eos", &ignore_eos)) return false;
    sp->set_ignore_eos(ignore_eos);

    for (const char* name : {"frequency_penalty", "presence_penalty"}) {
      if (!GetNumber(root, name, &d, &present)) return false;
      if (present && d != 0) {
        return Fail(absl::StrCat("'", name, "' is not supported by this server (use the "
                                 "'repetition_penalty' extension instead)"),
                    name);
      }
    }
    if (!GetInteger(root, "n", std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max(), &i64, &present)) {
      return false;
    }
    if (present && i64 != 1) return Fail("only 'n' = 1 is supported", "n");
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

  bool RejectUnsupported(const json& root) {
    const json* tools = Field(root, "tools");
    if (tools != nullptr && !(tools->is_array() && tools->empty())) {
      return Fail("'tools' (function calling) is not supported by this server", "tools");
    }
    if (Field(root, "functions") != nullptr) {
      return Fail("'functions' (function calling) is not supported by this server", "functions");
    }
    const json* logit_bias = Field(root, "logit_bias");
    if (logit_bias != nullptr && !(logit_bias->is_object() && logit_bias->empty())) {
      return Fail("'logit_bias' is not supported by this server", "logit_bias");
    }
    const json* format = Field(root, "response_format");
    if (format != nullptr) {
      const json* type = format->is_object() ? Field(*format, "type") : nullptr;
      if (type == nullptr || !type->is_string() || type->get_ref<const std::string&>() != "text") {
        return Fail("only response_format {\"type\": \"text\"} is supported", "response_format");
      }
    }
    return true;
  }

  const ChatRequestLimits& limits_;
  ChatCompletionRequest* out_;
  OpenAiError* err_;
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
  Parser parser(limits, out, error);
  return parser.Parse(root);
}

}  // namespace glm4v::openai
