// The fields /v1/chat/completions and /v1/completions share: model, stream / stream_options,
// n, user and the sampling parameters (max_tokens / max_completion_tokens, temperature, top_p,
// presence / frequency penalties, logit_bias, seed, stop, and the extensions top_k,
// repetition_penalty, ignore_eos, stop_token_ids). Each step reports the first problem as a
// 400 naming the field and returns false. null counts as absent (OpenAI's SDKs send nulls).
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"

namespace glm4v::openai {

// Limits both endpoints apply before anything reaches the gateway's own validation.
struct RequestLimits {
  // Requests naming another model get 404 model_not_found; an absent model is accepted.
  std::string model_name;
  int max_choices = 16;  // largest n
  // Tools (function calling) are accepted only for models that were trained for them
  // (GLM-4-9B-chat); GLM-4V-9B answers 400.
  bool accepts_tools = false;
};

// What the two endpoints' parsers produce besides the GenerateRequest.
struct CommonRequest {
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int n = 1;
  std::string user;  // OpenAI's end-user id: logged, not interpreted
};

// The field lookup every parser uses: null is absent.
const nlohmann::json* Field(const nlohmann::json& obj, const char* name);

class RequestFieldParser {
 public:
  RequestFieldParser(const RequestLimits& limits, OpenAiError* err) : limits_(limits), err_(err) {}

  bool Fail(std::string message, std::string param);
  bool TypeError(const std::string& param, const char* expected);

  bool GetBool(const nlohmann::json& obj, const char* name, bool* value, bool* present = nullptr);
  // Finite number; integers are accepted as numbers.
  bool GetNumber(const nlohmann::json& obj, const char* name, double* value, bool* present);
  bool GetInteger(const nlohmann::json& obj, const char* name, int64_t lo, int64_t hi,
                  int64_t* value, bool* present);

  bool ParseModel(const nlohmann::json& root);
  bool ParseCommon(const nlohmann::json& root, CommonRequest* out);
  bool ParseSampling(const nlohmann::json& root, glm4v::v1::SamplingParams* sp);

 private:
  bool ParseStop(const nlohmann::json& root, glm4v::v1::SamplingParams* sp);
  bool ParseStopTokenIds(const nlohmann::json& root, glm4v::v1::SamplingParams* sp);
  bool ParseLogitBias(const nlohmann::json& root, glm4v::v1::SamplingParams* sp);

  const RequestLimits& limits_;
  OpenAiError* err_;
};

}  // namespace glm4v::openai
