#include "services/gateway/openai/chat_response.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {
namespace {

using nlohmann::json;

CompletionContext Ctx() {
  CompletionContext c;
  c.id = "chatcmpl-abc";
  c.created = 1700000000;
  c.model = "glm-4v-9b";
  return c;
}

// Splits "data: X\n\n" events and parses each X (or keeps "[DONE]").
std::vector<json> ParseEvents(const std::string& sse) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < sse.size()) {
    EXPECT_EQ(sse.compare(pos, 6, "data: "), 0) << sse.substr(pos);
    const size_t end = sse.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos);
    const std::string payload = sse.substr(pos + 6, end - pos - 6);
    out.push_back(payload == "[DONE]" ? json("[DONE]") : json::parse(payload));
    pos = end + 2;
  }
  return out;
}

TEST(ChatResponseTest, CompletionObject) {
  glm4v::v1::GenerateResponse r;
  r.set_text("Hello");
  r.set_finish_reason(glm4v::v1::FINISH_REASON_LENGTH);
  r.mutable_usage()->set_prompt_tokens(10);
  r.mutable_usage()->set_completion_tokens(3);
  r.mutable_usage()->set_cached_prompt_tokens(4);
  json j = CompletionToJson(r, Ctx());
  EXPECT_EQ(j["id"], "chatcmpl-abc");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "glm-4v-9b");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 13);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
}

TEST(ChatResponseTest, FinishReasons) {
  EXPECT_STREQ(FinishReasonName(glm4v::v1::FINISH_REASON_STOP), "stop");
  EXPECT_STREQ(FinishReasonName(glm4v::v1::FINISH_REASON_LENGTH), "length");
}

TEST(ChatResponseTest, LogprobsAreTrimmedToWhatWasAsked) {
  glm4v::v1::GenerateResponse r;
  r.set_text("ab");
  auto* lp = r.add_logprobs();
  lp->mutable_chosen()->set_text("a");
  lp->mutable_chosen()->set_logprob(-0.5f);
  for (int i = 0; i < 3; ++i) {
    auto* t = lp->add_top();
    t->set_text(std::string(1, static_cast<char>('x' + i)));
    t->set_logprob(-1.0f - i);
  }
  CompletionContext ctx = Ctx();
  ctx.logprobs = true;
  ctx.top_logprobs = 2;
  json content = CompletionToJson(r, ctx)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0]["token"], "a");
  EXPECT_FLOAT_EQ(content[0]["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(content[0]["bytes"], json::array({97}));
  ASSERT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "y");
  ctx.top_logprobs = 0;
  EXPECT_TRUE(
      CompletionToJson(r, ctx)["choices"][0]["logprobs"]["content"][0]["top_logprobs"].empty());
}

TEST(ChatResponseTest, StreamSequenceWithUsage) {
  ChatStreamEncoder enc(Ctx(), /*include_usage=*/true);
  std::string sse = enc.Start();
  glm4v::v1::GenerateStreamResponse m;
  m.set_text_delta("Hel");
  sse += enc.Next(m);
  m.Clear();
  m.add_token_ids(5);  // half a character: no text yet, nothing to send
  EXPECT_EQ(enc.Next(m), "");
  m.Clear();
  m.set_text_delta("lo");
  m.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
  m.mutable_usage()->set_prompt_tokens(4);
  m.mutable_usage()->set_completion_tokens(2);
  EXPECT_FALSE(enc.finished());
  sse += enc.Next(m);
  EXPECT_TRUE(enc.finished());
  sse += SseDone();

  std::vector<json> ev = ParseEvents(sse);
  ASSERT_EQ(ev.size(), 6u) << sse;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ev[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(ev[i]["id"], "chatcmpl-abc");
  }
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(ev[0]["usage"].is_null());
  EXPECT_EQ(ev[1]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(ev[1]["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(ev[2]["choices"][0]["delta"]["content"], "lo");
  EXPECT_TRUE(ev[3]["choices"][0]["delta"].empty());
  EXPECT_EQ(ev[3]["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(ev[4]["choices"].empty());
  EXPECT_EQ(ev[4]["usage"]["total_tokens"], 6);
  EXPECT_EQ(ev[5], "[DONE]");
}

TEST(ChatResponseTest, StreamWithoutUsageHasNoUsageField) {
  ChatStreamEncoder enc(Ctx(), /*include_usage=*/false);
  glm4v::v1::GenerateStreamResponse m;
  m.set_finish_reason(glm4v::v1::FINISH_REASON_LENGTH);
  std::vector<json> ev = ParseEvents(enc.Start() + enc.Next(m));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].contains("usage"));
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "length");
}

TEST(ChatResponseTest, StreamErrorEvent) {
  ChatStreamEncoder enc(Ctx(), false);
  std::string e = enc.Error(InvalidRequest("boom"));
  EXPECT_TRUE(absl::StartsWith(e, "data: {\"error\""));
  EXPECT_EQ(ParseEvents(e)[0]["error"]["message"], "boom");
}

glm4v::v1::GenerateResponse Finished(const std::string& text, uint32_t prompt, uint32_t cached,
                                     uint32_t completion) {
  glm4v::v1::GenerateResponse r;
  r.set_text(text);
  r.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
  r.mutable_usage()->set_prompt_tokens(prompt);
  r.mutable_usage()->set_cached_prompt_tokens(cached);
  r.mutable_usage()->set_completion_tokens(completion);
  return r;
}

TEST(ChatResponseTest, ChoicesShareThePromptsUsage) {
  CompletionContext ctx = Ctx();
  ctx.n = 3;
  json j = CompletionToJson(
      {Finished("a", 10, 0, 2), Finished("b", 10, 8, 3), Finished("c", 10, 8, 4)}, ctx);
  ASSERT_EQ(j["choices"].size(), 3u);
  EXPECT_EQ(j["choices"][2]["index"], 2);
  EXPECT_EQ(j["choices"][1]["message"]["content"], "b");
  // The prompt counts once; every choice's completion counts.
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["completion_tokens"], 9);
  EXPECT_EQ(j["usage"]["total_tokens"], 19);
  // Two prompts x n = 2 (completions): each prompt once.
  glm4v::v1::Usage u =
      CombinedUsage({Finished("", 5, 0, 1).usage(), Finished("", 5, 4, 1).usage(),
                     Finished("", 7, 0, 1).usage(), Finished("", 7, 6, 1).usage()},
                    2);
  EXPECT_EQ(u.prompt_tokens(), 12u);
  EXPECT_EQ(u.completion_tokens(), 4u);
}

TEST(ChatResponseTest, ToolCallsReplaceTheContent) {
  CompletionContext ctx = Ctx();
  ctx.tool_names = {"get_weather"};
  json j = CompletionToJson(Finished("get_weather\n{\"city\": \"Paris\"}", 5, 0, 9), ctx);
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["message"]["content"].is_null());
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  const json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(call["function"]["arguments"], "{\"city\": \"Paris\"}");
  EXPECT_TRUE(absl::StartsWith(call["id"].get<std::string>(), "call_"));
  // An ordinary answer stays content.
  j = CompletionToJson(Finished("\nIt is sunny.", 5, 0, 4), ctx);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "\nIt is sunny.");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST(ChatResponseTest, TextCompletionObjectWithLegacyLogprobs) {
  CompletionContext ctx = Ctx();
  ctx.id = "cmpl-abc";
  ctx.kind = CompletionKind::kText;
  ctx.logprobs = true;
  ctx.top_logprobs = 1;
  glm4v::v1::GenerateResponse r = Finished("Hi!", 3, 0, 2);
  for (const char* t : {"Hi", "!"}) {
    glm4v::v1::TokenLogprobs* lp = r.add_logprobs();
    lp->mutable_chosen()->set_text(t);
    lp->mutable_chosen()->set_logprob(-0.5f);
    lp->add_top()->set_text(t);
    lp->mutable_top(0)->set_logprob(-0.5f);
  }
  json j = CompletionToJson(r, ctx);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "Hi!");
  const json& lp = j["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json({"Hi", "!"}));
  EXPECT_EQ(lp["text_offset"], json({0, 2}));
  EXPECT_EQ(lp["top_logprobs"][1]["!"], -0.5);
  EXPECT_EQ(lp["token_logprobs"][0], -0.5);
}

TEST(ChatResponseTest, TextStreamChunks) {
  CompletionContext ctx = Ctx();
  ctx.kind = CompletionKind::kText;
  ChatStreamEncoder enc(ctx, /*include_usage=*/false);
  EXPECT_EQ(enc.Start(), "");  // no role chunk in a text completion
  glm4v::v1::GenerateStreamResponse m;
  m.set_text_delta("once");
  m.set_finish_reason(glm4v::v1::FINISH_REASON_LENGTH);
  std::vector<json> ev = ParseEvents(enc.Next(m));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0]["object"], "text_completion");
  EXPECT_EQ(ev[0]["choices"][0]["text"], "once");
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "length");
}

TEST(ChatResponseTest, StreamedChoicesAndHeldToolCalls) {
  CompletionContext ctx = Ctx();
  ctx.n = 2;
  ctx.tool_names = {"get_weather"};
  ChatStreamEncoder enc(ctx, /*include_usage=*/true, /*num_choices=*/2);
  std::vector<json> ev = ParseEvents(enc.Start());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1]["choices"][0]["index"], 1);
  glm4v::v1::GenerateStreamResponse m;
  // Choice 0 starts like a call: held back.
  m.set_text_delta("get_wea");
  EXPECT_EQ(enc.Next(0, m), "");
  // Choice 1 starts with "\n": an ordinary answer, streamed at once.
  m.set_text_delta("\nSunny");
  ev = ParseEvents(enc.Next(1, m));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["choices"][0]["index"], 1);
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["content"], "\nSunny");
  m.set_text_delta("");
  m.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
  m.mutable_usage()->set_prompt_tokens(6);
  m.mutable_usage()->set_completion_tokens(2);
  ev = ParseEvents(enc.Next(1, m));
  ASSERT_EQ(ev.size(), 1u);  // its finish; no usage until every choice ended
  EXPECT_FALSE(enc.finished());
  m.set_text_delta("ther\n{\"city\": \"Oslo\"}");
  m.mutable_usage()->set_completion_tokens(7);
  ev = ParseEvents(enc.Next(0, m));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(ev[2]["usage"]["prompt_tokens"], 6);
  EXPECT_EQ(ev[2]["usage"]["completion_tokens"], 9);
  EXPECT_TRUE(enc.finished());
}

TEST(ChatResponseTest, AForcedToolChoiceMakesEveryCompletionItsCall) {
  CompletionContext ctx = Ctx();
  ctx.tool_names = {"get_weather"};
  ctx.forced_tool = "get_weather";
  // The prompt ended with "get_weather\n": the text is the arguments.
  json j = CompletionToJson(Finished(" {\"city\": \"Oslo\"}\n", 5, 0, 6), ctx);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\": \"Oslo\"}");
  // Arguments that are not JSON are passed on as generated (as OpenAI's API does); cut off by
  // max_tokens the reason is "length".
  glm4v::v1::GenerateResponse cut = Finished("{\"city\": \"Os", 5, 0, 4);
  cut.set_finish_reason(glm4v::v1::FINISH_REASON_LENGTH);
  j = CompletionToJson(cut, ctx);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\": \"Os");

  // Streamed: everything is held (even a start like an ordinary answer's), then one call.
  ChatStreamEncoder enc(ctx, /*include_usage=*/false);
  enc.Start();
  glm4v::v1::GenerateStreamResponse m;
  m.set_text_delta("\n{\"city\":");
  EXPECT_EQ(enc.Next(m), "");
  m.set_text_delta(" \"Rome\"}");
  m.set_finish_reason(glm4v::v1::FINISH_REASON_STOP);
  std::vector<json> ev = ParseEvents(enc.Next(m));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\": \"Rome\"}");
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "tool_calls");
}

}  // namespace
}  // namespace glm4v::openai
