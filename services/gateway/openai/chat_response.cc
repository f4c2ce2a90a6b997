#include "services/gateway/openai/chat_response.h"

#include <algorithm>
#include <utility>

#include "services/gateway/openai/json_dump.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;

json TokenEntry(const glm4v::v1::TokenLogprob& t) {
  // OpenAI gives the raw UTF-8 bytes so clients can rebuild characters split across tokens.
  json bytes = json::array();
  for (unsigned char c : t.text()) bytes.push_back(static_cast<int>(c));
  return {{"token", t.text()}, {"logprob", t.logprob()}, {"bytes", std::move(bytes)}};
}

}  // namespace

const char* FinishReasonName(glm4v::v1::FinishReason reason) {
  return reason == glm4v::v1::FINISH_REASON_LENGTH ? "length" : "stop";
}

json UsageToJson(const glm4v::v1::Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens()},
          {"completion_tokens", usage.completion_tokens()},
          {"total_tokens", usage.prompt_tokens() + usage.completion_tokens()},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_prompt_tokens()}}}};
}

json LogprobsToJson(
    const google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs>& logprobs,
    int top_logprobs) {
  json content = json::array();
  for (const auto& lp : logprobs) {
    json entry = TokenEntry(lp.chosen());
    json top = json::array();
    const int n = std::min(top_logprobs, lp.top_size());
    for (int i = 0; i < n; ++i) top.push_back(TokenEntry(lp.top(i)));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return {{"content", std::move(content)}};
}

json CompletionToJson(const glm4v::v1::GenerateResponse& response, const CompletionContext& ctx) {
  json choice = {
      {"index", 0},
      {"message", {{"role", "assistant"}, {"content", response.text()}}},
      {"logprobs", ctx.logprobs ? LogprobsToJson(response.logprobs(), ctx.top_logprobs)
                                : json(nullptr)},
      {"finish_reason", FinishReasonName(response.finish_reason())},
  };
  return {{"id", ctx.id},
          {"object", "chat.completion"},
          {"created", ctx.created},
          {"model", ctx.model},
          {"choices", json::array({std::move(choice)})},
          {"usage", UsageToJson(response.usage())}};
}

std::string SseData(const json& j) { return "data: " + DumpJson(j) + "\n\n"; }

std::string SseDone() { return "data: [DONE]\n\n"; }

json ChatStreamEncoder::Chunk(json delta, const json& finish_reason) const {
  json chunk = {{"id", ctx_.id},
                {"object", "chat.completion.chunk"},
                {"created", ctx_.created},
                {"model", ctx_.model},
                {"choices", json::array({{{"index", 0},
                                          {"delta", std::move(delta)},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish_reason}}})}};
  // With include_usage every chunk carries "usage": null except the final usage chunk.
  if (include_usage_) chunk["usage"] = nullptr;
  return chunk;
}

std::string ChatStreamEncoder::Start() {
  return SseData(Chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
}

std::string ChatStreamEncoder::Next(const glm4v::v1::GenerateStreamResponse& message) {
  std::string out;
  const bool has_logprobs = ctx_.logprobs && message.logprobs_size() > 0;
  if (!message.text_delta().empty() || has_logprobs) {
    json chunk = Chunk({{"content", message.text_delta()}}, nullptr);
    if (has_logprobs) {
      chunk["choices"][0]["logprobs"] = LogprobsToJson(message.logprobs(), ctx_.top_logprobs);
    }
    out += SseData(chunk);
  }
  if (message.finish_reason() != glm4v::v1::FINISH_REASON_UNSPECIFIED && !finished_) {
    finished_ = true;
    out += SseData(Chunk(json::object(), FinishReasonName(message.finish_reason())));
    if (include_usage_) {
      json usage_chunk = {{"id", ctx_.id},
                          {"object", "chat.completion.chunk"},
                          {"created", ctx_.created},
                          {"model", ctx_.model},
                          {"choices", json::array()},
                          {"usage", UsageToJson(message.usage())}};
      out += SseData(usage_chunk);
    }
  }
  return out;
}

std::string ChatStreamEncoder::Error(const OpenAiError& error) const {
  return SseData(ErrorToJson(error));
}

}  // namespace glm4v::openai
