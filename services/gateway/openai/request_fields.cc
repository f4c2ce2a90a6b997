#include "services/gateway/openai/request_fields.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace glm4v::openai {

using nlohmann::json;

const json* Field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

bool RequestFieldParser::Fail(std::string message, std::string param) {
  *err_ = InvalidRequest(std::move(message), std::move(param));
  return false;
}

bool RequestFieldParser::TypeError(const std::string& param, const char* expected) {
  return Fail(absl::StrCat("'", param, "' must be ", expected), param);
}

bool RequestFieldParser::GetBool(const json& obj, const char* name, bool* value, bool* present) {
  const json* f = Field(obj, name);
  if (present != nullptr) *present = f != nullptr;
  if (f == nullptr) return true;
  if (!f->is_boolean()) return TypeError(name, "a boolean");
  *value = f->get<bool>();
  return true;
}

bool RequestFieldParser::GetNumber(const json& obj, const char* name, double* value,
                                   bool* present) {
  const json* f = Field(obj, name);
  *present = f != nullptr;
  if (f == nullptr) return true;
  if (!f->is_number()) return TypeError(name, "a number");
  *value = f->get<double>();
  if (!std::isfinite(*value)) return TypeError(name, "a finite number");
  return true;
}

bool RequestFieldParser::GetInteger(const json& obj, const char* name, int64_t lo, int64_t hi,
                                    int64_t* value, bool* present) {
  const json* f = Field(obj, name);
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

bool RequestFieldParser::ParseModel(const json& root) {
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

bool RequestFieldParser::ParseCommon(const json& root, CommonRequest* out) {
  if (!GetBool(root, "stream", &out->stream)) return false;
  if (const json* opts = Field(root, "stream_options"); opts != nullptr) {
    if (!opts->is_object()) return TypeError("stream_options", "an object");
    if (!out->stream) {
      return Fail("'stream_options' is only allowed when 'stream' is true", "stream_options");
    }
    const json* usage = Field(*opts, "include_usage");
    if (usage != nullptr) {
      if (!usage->is_boolean()) return TypeError("stream_options.include_usage", "a boolean");
      out->include_usage = usage->get<bool>();
    }
  }
  int64_t n = 1;
  bool present = false;
  if (!GetInteger(root, "n", 1, limits_.max_choices, &n, &present)) return false;
  out->n = static_cast<int>(n);
  if (const json* user = Field(root, "user"); user != nullptr) {
    if (!user->is_string()) return TypeError("user", "a string");
    out->user = user->get<std::string>();
  }
  return true;
}

bool RequestFieldParser::ParseStop(const json& root, glm4v::v1::SamplingParams* sp) {
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

bool RequestFieldParser::ParseStopTokenIds(const json& root, glm4v::v1::SamplingParams* sp) {
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

// {"token id as a string": bias}: the ids are the model's own token ids.
bool RequestFieldParser::ParseLogitBias(const json& root, glm4v::v1::SamplingParams* sp) {
  const json* bias = Field(root, "logit_bias");
  if (bias == nullptr) return true;
  if (!bias->is_object()) return TypeError("logit_bias", "an object of token id -> bias");
  for (const auto& [key, value] : bias->items()) {
    const std::string param = absl::StrCat("logit_bias.", key);
    uint32_t id = 0;
    if (!absl::SimpleAtoi(key, &id)) {
      return Fail(absl::StrCat("'logit_bias' keys must be token ids; got '", key, "'"), param);
    }
    if (!value.is_number() || !std::isfinite(value.get<double>())) {
      return TypeError(param, "a number");
    }
    const double b = value.get<double>();
    if (b < -100 || b > 100) return Fail(absl::StrCat("'", param, "' must be in [-100, 100]"), param);
    (*sp->mutable_logit_bias())[id] = static_cast<float>(b);
  }
  return true;
}

bool RequestFieldParser::ParseSampling(const json& root, glm4v::v1::SamplingParams* sp) {
  bool present = false;
  int64_t i64 = 0;
  double d = 0;
  constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();

  // max_completion_tokens is the current name and wins; max_tokens the deprecated one.
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
  // OpenAI's additive penalties, each in [-2, 2].
  auto penalty = [&](const char* name, void (glm4v::v1::SamplingParams::*set)(float)) {
    if (!GetNumber(root, name, &d, &present)) return false;
    if (!present) return true;
    if (d < -2 || d > 2) return Fail(absl::StrCat("'", name, "' must be between -2 and 2"), name);
    (sp->*set)(static_cast<float>(d));
    return true;
  };
  if (!penalty("presence_penalty", &glm4v::v1::SamplingParams::set_presence_penalty) ||
      !penalty("frequency_penalty", &glm4v::v1::SamplingParams::set_frequency_penalty)) {
    return false;
  }
  if (!ParseLogitBias(root, sp)) return false;
  // OpenAI seeds are signed 64-bit; keep the bit pattern so every seed stays distinct.
  if (const json* seed = Field(root, "seed"); seed != nullptr) {
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
  return true;
}

}  // namespace glm4v::openai
