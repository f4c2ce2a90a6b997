// glm4v.v1 responses -> OpenAI chat.completion objects and chat.completion.chunk SSE events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"

namespace glm4v::openai {

// What every object of one completion shares.
struct CompletionContext {
  std::string id;       // "chatcmpl-<request id>"
  int64_t created = 0;  // Unix seconds
  std::string model;
  bool logprobs = false;
  int top_logprobs = 0;  // alternatives to report per token (0..20)
};

// "stop" or "length" (the only reasons a finished OpenAI completion can have here).
const char* FinishReasonName(glm4v::v1::FinishReason reason);

nlohmann::json UsageToJson(const glm4v::v1::Usage& usage);

// OpenAI's logprobs object {"content": [{token, logprob, bytes, top_logprobs}]}.
nlohmann::json LogprobsToJson(const google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs>&
                                  logprobs,
                              int top_logprobs);

// The non-streaming chat.completion object.
nlohmann::json CompletionToJson(const glm4v::v1::GenerateResponse& response,
                                const CompletionContext& ctx);

// One server-sent event: "data: <json>\n\n".
std::string SseData(const nlohmann::json& j);
// The stream terminator "data: [DONE]\n\n".
std::string SseDone();

// Turns the gRPC stream into OpenAI's chunk sequence: a role chunk first, content chunks, a
// chunk carrying finish_reason, then (with include_usage) a usage chunk with empty choices.
class ChatStreamEncoder {
 public:
  ChatStreamEncoder(CompletionContext ctx, bool include_usage)
      : ctx_(std::move(ctx)), include_usage_(include_usage) {}

  // The first event: delta {"role": "assistant", "content": ""}.
  std::string Start();
  // Events for one gRPC message (possibly none: a message with neither text nor logprobs).
  std::string Next(const glm4v::v1::GenerateStreamResponse& message);
  // Whether a message with finish_reason was seen (a stream ending without it is an error).
  bool finished() const { return finished_; }
  // A failure after the stream started: an error event (OpenAI's error shape); no [DONE].
  std::string Error(const OpenAiError& error) const;

 private:
  nlohmann::json Chunk(nlohmann::json delta, const nlohmann::json& finish_reason) const;

  CompletionContext ctx_;
  bool include_usage_;
  bool finished_ = false;
};

}  // namespace glm4v::openai
