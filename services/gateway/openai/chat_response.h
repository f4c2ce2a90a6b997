// glm4v.v1 responses -> OpenAI objects: chat.completion / chat.completion.chunk (with tool calls
// for the GLM-4-9B-chat models) and the legacy text_completion of /v1/completions, for any
// number of choices.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/openai/openai_error.h"

namespace glm4v::openai {

enum class CompletionKind { kChat, kText };

// What every object of one completion shares.
struct CompletionContext {
  std::string id;       // "chatcmpl-<request id>" / "cmpl-<request id>"
  int64_t created = 0;  // Unix seconds
  std::string model;
  CompletionKind kind = CompletionKind::kChat;
  bool logprobs = false;
  int top_logprobs = 0;  // alternatives to report per token (chat 0..20, text 0..5)
  int n = 1;             // choices per prompt: choice i answers prompt i / n
  // Chat with tools offered ("auto"): a completion naming one of these is a tool call.
  std::vector<std::string> tool_names;
  // A forced tool_choice: every completion is the arguments of a call to this function.
  std::string forced_tool;
};

// "stop" or "length" (the only reasons a finished OpenAI completion can have here).
const char* FinishReasonName(glm4v::v1::FinishReason reason);

nlohmann::json UsageToJson(const glm4v::v1::Usage& usage);

// Usage of a whole request: each prompt's tokens once (its first choice's figures, which
// include the prefix-cache hits), completion tokens of every choice.
glm4v::v1::Usage CombinedUsage(const std::vector<glm4v::v1::Usage>& choices, int n);

// Chat's logprobs object {"content": [{token, logprob, bytes, top_logprobs}]}.
nlohmann::json LogprobsToJson(const google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs>&
                                  logprobs,
                              int top_logprobs);

// The non-streaming object: chat.completion or text_completion, one choice per response.
nlohmann::json CompletionToJson(const std::vector<glm4v::v1::GenerateResponse>& choices,
                                const CompletionContext& ctx);
inline nlohmann::json CompletionToJson(const glm4v::v1::GenerateResponse& response,
                                       const CompletionContext& ctx) {
  return CompletionToJson(std::vector<glm4v::v1::GenerateResponse>{response}, ctx);
}

// One server-sent event: "data: <json>\n\n".
std::string SseData(const nlohmann::json& j);
// The stream terminator "data: [DONE]\n\n".
std::string SseDone();

// Turns the choices' gRPC streams into OpenAI's chunk sequence. Chat: a role chunk per choice
// first, content chunks, a chunk with each choice's finish_reason; text: text chunks, then the
// finish. With include_usage a last chunk carries the combined usage and empty choices. With
// tools, a choice that may be a tool call is held back until it ends (GLM-4 gives no earlier
// sign than the first characters) and then sent as one tool_calls delta or as its text; under a
// forced tool_choice every choice is held and sent as its call.
class ChatStreamEncoder {
 public:
  ChatStreamEncoder(CompletionContext ctx, bool include_usage, int num_choices = 1);

  // The first events (chat: delta {"role": "assistant", "content": ""} per choice).
  std::string Start();
  // Events for one gRPC message of `choice` (possibly none).
  std::string Next(int choice, const glm4v::v1::GenerateStreamResponse& message);
  std::string Next(const glm4v::v1::GenerateStreamResponse& message) { return Next(0, message); }
  // Whether every choice saw its finish_reason (a stream ending without is an error).
  bool finished() const { return finished_count_ == static_cast<int>(choices_.size()); }
  // A failure after the stream started: an error event (OpenAI's error shape); no [DONE].
  std::string Error(const OpenAiError& error) const;

 private:
  struct Choice {
    bool finished = false;
    bool holding = false;  // text held back: may be a tool call
    std::string held;
    google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs> held_logprobs;
    int64_t text_offset = 0;  // legacy logprobs' text_offset
    glm4v::v1::Usage usage;  // of the finishing message
  };
  // id, object, created, model and these choices.
  nlohmann::json Envelope(nlohmann::json choices) const;
  nlohmann::json Chunk(int choice, nlohmann::json delta, const nlohmann::json& finish_reason,
                       nlohmann::json logprobs = nullptr) const;
  std::string TextEvents(int choice, const std::string& text,
                         const google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs>& lp);

  CompletionContext ctx_;
  bool include_usage_;
  std::vector<Choice> choices_;
  int finished_count_ = 0;
};

}  // namespace glm4v::openai
