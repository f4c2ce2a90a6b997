#include "services/gateway/openai/chat_response.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/gateway/openai/glm4_tools.h"
#include "services/gateway/openai/json_dump.h"

namespace glm4v::openai {
namespace {

using nlohmann::json;
using Logprobs = google::protobuf::RepeatedPtrField<glm4v::v1::TokenLogprobs>;

json TokenEntry(const glm4v::v1::TokenLogprob& t) {
  // OpenAI gives the raw UTF-8 bytes so clients can rebuild characters split across tokens.
  json bytes = json::array();
  for (unsigned char c : t.text()) bytes.push_back(static_cast<int>(c));
  return {{"token", t.text()}, {"logprob", t.logprob()}, {"bytes", std::move(bytes)}};
}

// The legacy completions shape: parallel arrays, alternatives as {token text: logprob}.
json LegacyLogprobsToJson(const Logprobs& logprobs, int top_logprobs, int64_t* text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
       offsets = json::array();
  for (const auto& lp : logprobs) {
    tokens.push_back(lp.chosen().text());
    token_logprobs.push_back(lp.chosen().logprob());
    json alternatives = json::object();
    for (int i = 0; i < std::min(top_logprobs, lp.top_size()); ++i) {
      alternatives[lp.top(i).text()] = lp.top(i).logprob();
    }
    top.push_back(std::move(alternatives));
    offsets.push_back(*text_offset);
    *text_offset += static_cast<int64_t>(lp.chosen().text().size());
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

json ChoiceLogprobs(const Logprobs& logprobs, const CompletionContext& ctx, int64_t* offset) {
  if (!ctx.logprobs) return nullptr;
  if (ctx.kind == CompletionKind::kText) {
    return LegacyLogprobsToJson(logprobs, ctx.top_logprobs, offset);
  }
  return LogprobsToJson(logprobs, ctx.top_logprobs);
}

// Ids of tool calls: unique per completion and choice.
std::string ToolCallId(const CompletionContext& ctx, int choice) {
  return absl::StrCat("call_", ctx.id.substr(ctx.id.find('-') + 1), "_", choice);
}

// The tool call a chat completion's text makes, if any.
std::optional<ToolCall> CallIn(const CompletionContext& ctx, const std::string& text) {
  if (!ctx.forced_tool.empty()) return ForcedToolCall(ctx.forced_tool, text);
  if (ctx.tool_names.empty()) return std::nullopt;
  return ParseGlm4ToolCall(text, ctx.tool_names);
}

// A call's finish_reason: "tool_calls" unless it was cut off (then "length", as OpenAI's).
const char* CallFinishReason(glm4v::v1::FinishReason reason) {
  return reason == glm4v::v1::FINISH_REASON_STOP ? "tool_calls" : FinishReasonName(reason);
}

json ToolCallJson(const ToolCall& call, const std::string& id) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
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

glm4v::v1::Usage CombinedUsage(const std::vector<glm4v::v1::Usage>& choices, int n) {
  glm4v::v1::Usage total;
  for (size_t i = 0; i < choices.size(); ++i) {
    const glm4v::v1::Usage& u = choices[i];
    if (n <= 1 || i % n == 0) {
      total.set_prompt_tokens(total.prompt_tokens() + u.prompt_tokens());
      total.set_cached_prompt_tokens(total.cached_prompt_tokens() + u.cached_prompt_tokens());
      total.set_image_tokens(total.image_tokens() + u.image_tokens());
    }
    total.set_completion_tokens(total.completion_tokens() + u.completion_tokens());
  }
  return total;
}

json LogprobsToJson(const Logprobs& logprobs, int top_logprobs) {
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

json CompletionToJson(const std::vector<glm4v::v1::GenerateResponse>& choices,
                      const CompletionContext& ctx) {
  json out_choices = json::array();
  std::vector<glm4v::v1::Usage> usages;
  for (size_t i = 0; i < choices.size(); ++i) {
    const glm4v::v1::GenerateResponse& r = choices[i];
    usages.push_back(r.usage());
    int64_t offset = 0;
    json choice = {{"index", i},
                   {"logprobs", ChoiceLogprobs(r.logprobs(), ctx, &offset)},
                   {"finish_reason", FinishReasonName(r.finish_reason())}};
    if (ctx.kind == CompletionKind::kText) {
      choice["text"] = r.text();
    } else if (auto call = CallIn(ctx, r.text())) {
      choice["message"] = {{"role", "assistant"},
                           {"content", nullptr},
                           {"tool_calls", json::array({ToolCallJson(*call, ToolCallId(ctx, i))})}};
      choice["finish_reason"] = CallFinishReason(r.finish_reason());
    } else {
      choice["message"] = {{"role", "assistant"}, {"content", r.text()}};
    }
    out_choices.push_back(std::move(choice));
  }
  return {{"id", ctx.id},
          {"object", ctx.kind == CompletionKind::kText ? "text_completion" : "chat.completion"},
          {"created", ctx.created},
          {"model", ctx.model},
          {"choices", std::move(out_choices)},
          {"usage", UsageToJson(CombinedUsage(usages, ctx.n))}};
}

std::string SseData(const json& j) { return "data: " + DumpJson(j) + "\n\n"; }

std::string SseDone() { return "data: [DONE]\n\n"; }

ChatStreamEncoder::ChatStreamEncoder(CompletionContext ctx, bool include_usage, int num_choices)
    : ctx_(std::move(ctx)), include_usage_(include_usage), choices_(std::max(1, num_choices)) {
  for (Choice& c : choices_) c.holding = !ctx_.tool_names.empty() || !ctx_.forced_tool.empty();
}

json ChatStreamEncoder::Chunk(int choice, json delta, const json& finish_reason,
                              json logprobs) const {
  json c = {{"index", choice}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish_reason}};
  if (ctx_.kind == CompletionKind::kText) {
    c["text"] = delta.is_string() ? delta : json("");
  } else {
    c["delta"] = std::move(delta);
  }
  json chunk = Envelope(json::array({std::move(c)}));
  // With include_usage every chunk carries "usage": null except the final usage chunk.
  if (include_usage_) chunk["usage"] = nullptr;
  return chunk;
}

json ChatStreamEncoder::Envelope(json choices) const {
  return {{"id", ctx_.id},
          {"object", ctx_.kind == CompletionKind::kText ? "text_completion"
                                                        : "chat.completion.chunk"},
          {"created", ctx_.created},
          {"model", ctx_.model},
          {"choices", std::move(choices)}};
}

std::string ChatStreamEncoder::Start() {
  if (ctx_.kind == CompletionKind::kText) return "";
  std::string out;
  for (int i = 0; i < static_cast<int>(choices_.size()); ++i) {
    out += SseData(Chunk(i, {{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  return out;
}

std::string ChatStreamEncoder::TextEvents(int choice, const std::string& text,
                                          const Logprobs& lp) {
  const bool has_logprobs = ctx_.logprobs && !lp.empty();
  if (text.empty() && !has_logprobs) return "";
  json logprobs = has_logprobs ? ChoiceLogprobs(lp, ctx_, &choices_[choice].text_offset) : json();
  json delta = ctx_.kind == CompletionKind::kText ? json(text) : json({{"content", text}});
  return SseData(Chunk(choice, std::move(delta), nullptr, std::move(logprobs)));
}

std::string ChatStreamEncoder::Next(int choice, const glm4v::v1::GenerateStreamResponse& message) {
  if (choice < 0 || choice >= static_cast<int>(choices_.size())) return "";
  Choice& c = choices_[choice];
  if (c.finished) return "";
  std::string out;
  if (c.holding) {
    c.held += message.text_delta();
    for (const auto& lp : message.logprobs()) *c.held_logprobs.Add() = lp;
    if (ctx_.forced_tool.empty() && !MayBeToolCall(c.held)) {
      // An ordinary answer after all: release what was held.
      c.holding = false;
      out += TextEvents(choice, c.held, c.held_logprobs);
      c.held.clear();
      c.held_logprobs.Clear();
    }
  } else {
    out += TextEvents(choice, message.text_delta(), message.logprobs());
  }
  if (message.finish_reason() == glm4v::v1::FINISH_REASON_UNSPECIFIED) return out;
  c.finished = true;
  ++finished_count_;
  c.usage = message.usage();
  json finish = FinishReasonName(message.finish_reason());
  if (c.holding) {
    if (auto call = CallIn(ctx_, c.held)) {
      json delta = {{"tool_calls", json::array({ToolCallJson(*call, ToolCallId(ctx_, choice))})}};
      delta["tool_calls"][0]["index"] = 0;
      out += SseData(Chunk(choice, std::move(delta), nullptr));
      finish = CallFinishReason(message.finish_reason());
    } else {
      out += TextEvents(choice, c.held, c.held_logprobs);
    }
    c.held.clear();
  }
  out += SseData(Chunk(choice, ctx_.kind == CompletionKind::kText ? json("") : json::object(),
                       finish));
  if (include_usage_ && finished()) {
    std::vector<glm4v::v1::Usage> usages;
    for (const Choice& each : choices_) usages.push_back(each.usage);
    json usage_chunk = Envelope(json::array());
    usage_chunk["usage"] = UsageToJson(CombinedUsage(usages, ctx_.n));
    out += SseData(usage_chunk);
  }
  return out;
}

std::string ChatStreamEncoder::Error(const OpenAiError& error) const {
  return SseData(ErrorToJson(error));
}

}  // namespace glm4v::openai
