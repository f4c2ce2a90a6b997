#include "services/gateway/openai/chat_request.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {
namespace {

using nlohmann::json;

const ChatRequestLimits kLimits{"glm-4v-9b"};

ChatCompletionRequest MustParse(const json& body) {
  ChatCompletionRequest out;
  OpenAiError err;
  EXPECT_TRUE(ParseChatCompletionRequest(body.dump(), kLimits, &out, &err))
      << err.message << " param=" << err.param;
  return out;
}

OpenAiError MustFail(const std::string& body) {
  ChatCompletionRequest out;
  OpenAiError err;
  EXPECT_FALSE(ParseChatCompletionRequest(body, kLimits, &out, &err)) << body;
  return err;
}
OpenAiError MustFail(const json& body) { return MustFail(body.dump()); }

json Base() {
  return {{"model", "glm-4v-9b"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
}

TEST(ChatRequestTest, MinimalTextRequest) {
  ChatCompletionRequest r = MustParse(Base());
  ASSERT_EQ(r.generate.messages_size(), 1);
  EXPECT_EQ(r.generate.messages(0).role(), glm4v::v1::ROLE_USER);
  ASSERT_EQ(r.generate.messages(0).content_size(), 1);
  EXPECT_EQ(r.generate.messages(0).content(0).text(), "hi");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.generate.sampling().has_max_tokens());
  EXPECT_FALSE(r.generate.sampling().has_temperature());
  EXPECT_EQ(r.generate.sampling().top_logprobs(), 0u);
}

TEST(ChatRequestTest, RolesMapToProto) {
  json body = Base();
  body["messages"] = {{{"role", "system"}, {"content", "s"}},
                      {{"role", "developer"}, {"content", "d"}},
                      {{"role", "user"}, {"content", "u"}},
                      {{"role", "assistant"}, {"content", nullptr}},
                      {{"role", "tool"}, {"content", "t"}}};
  ChatCompletionRequest r = MustParse(body);
  ASSERT_EQ(r.generate.messages_size(), 5);
  EXPECT_EQ(r.generate.messages(0).role(), glm4v::v1::ROLE_SYSTEM);
  EXPECT_EQ(r.generate.messages(1).role(), glm4v::v1::ROLE_SYSTEM);
  EXPECT_EQ(r.generate.messages(2).role(), glm4v::v1::ROLE_USER);
  EXPECT_EQ(r.generate.messages(3).role(), glm4v::v1::ROLE_ASSISTANT);
  EXPECT_EQ(r.generate.messages(3).content_size(), 0);
  EXPECT_EQ(r.generate.messages(4).role(), glm4v::v1::ROLE_OBSERVATION);
}

TEST(ChatRequestTest, ContentPartsWithImage) {
  json body = Base();
  body["messages"][0]["content"] = {
      {{"type", "text"}, {"text", "what is"}},
      {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,aGVsbG8="}}}},
      {{"type", "image_url"}, {"image_url", "data:image/jpeg;base64,aGk="}},
      {{"type", "text"}, {"text", "this?"}}};
  ChatCompletionRequest r = MustParse(body);
  const auto& m = r.generate.messages(0);
  ASSERT_EQ(m.content_size(), 4);
  EXPECT_EQ(m.content(0).text(), "what is");
  EXPECT_EQ(m.content(1).image().data(), "hello");
  EXPECT_EQ(m.content(1).image().mime_type(), "image/png");
  EXPECT_EQ(m.content(2).image().data(), "hi");
  EXPECT_EQ(m.content(2).image().mime_type(), "image/jpeg");
  EXPECT_EQ(m.content(3).text(), "this?");
}

TEST(ChatRequestTest, HttpImageUrlsWaitForTheFetcherInPlace) {
  json body = Base();
  body["messages"][0]["content"] = {
      {{"type", "text"}, {"text", "what is"}},
      {{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.png"}}}}};
  ChatCompletionRequest r = MustParse(body);
  ASSERT_EQ(r.image_urls.size(), 1u);
  EXPECT_EQ(r.image_urls[0].url, "https://example.com/cat.png");
  EXPECT_EQ(r.image_urls[0].message, 0);
  EXPECT_EQ(r.image_urls[0].part, 1);
  EXPECT_EQ(r.image_urls[0].param, "messages[0].content[1].image_url.url");
  EXPECT_TRUE(r.generate.messages(0).content(1).has_image());
  body["messages"][0]["content"][1]["image_url"]["url"] = "ftp://example.com/cat.png";
  EXPECT_EQ(MustFail(body).param, "messages[0].content[1].image_url.url");
}

TEST(ChatRequestTest, PenaltiesLogitBiasNAndUser) {
  json body = Base();
  body["presence_penalty"] = -1.5;
  body["frequency_penalty"] = 2;
  body["logit_bias"] = {{"5", 1}, {"151329", -100}};
  body["n"] = 3;
  body["user"] = "user-1234";
  ChatCompletionRequest r = MustParse(body);
  const auto& s = r.generate.sampling();
  EXPECT_FLOAT_EQ(s.presence_penalty(), -1.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty(), 2.0f);
  ASSERT_EQ(s.logit_bias_size(), 2);
  EXPECT_EQ(s.logit_bias().at(5), 1.0f);
  EXPECT_EQ(s.logit_bias().at(151329), -100.0f);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.user, "user-1234");
}

json WeatherTool() {
  return {{"type", "function"},
          {"function",
           {{"name", "get_weather"},
            {"description", "Weather of a city"},
            {"parameters",
             {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
}

TEST(ChatRequestTest, ToolsBecomeGlm4sSystemMessageAndToolCallsAssistantTurns) {
  ChatRequestLimits chat_model = kLimits;
  chat_model.accepts_tools = true;
  json body = Base();
  body["messages"] = {
      {{"role", "user"}, {"content", "Weather in Paris?"}},
      {{"role", "assistant"},
       {"content", nullptr},
       {"tool_calls",
        {{{"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
      {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "{\"temp\": 21}"}}};
  // The tool in the caller's key order (name before description), which the prompt keeps.
  std::string raw = body.dump();
  raw.insert(raw.size() - 1,
             R"(,"tools":[{"type":"function","function":{"name":"get_weather",)"
             R"("description":"Weather of a city","parameters":{"type":"object",)"
             R"("properties":{"city":{"type":"string"}}}}}])");
  ChatCompletionRequest r;
  OpenAiError err;
  ASSERT_TRUE(ParseChatCompletionRequest(raw, chat_model, &r, &err)) << err.message;
  EXPECT_EQ(r.tool_names, std::vector<std::string>{"get_weather"});
  ASSERT_EQ(r.generate.messages_size(), 4);
  const auto& system = r.generate.messages(0);
  EXPECT_EQ(system.role(), glm4v::v1::ROLE_SYSTEM);
  const std::string& prompt = system.content(0).text();
  EXPECT_NE(prompt.find("# 可用工具\n\n## get_weather\n\n{\n    \"name\": \"get_weather\",\n"
                        "    \"description\": \"Weather of a city\",\n"),
            std::string::npos)
      << prompt;  // the caller's key order, indent 4
  EXPECT_NE(prompt.find("在调用上述函数时，请使用 Json 格式表示调用的参数。"), std::string::npos);
  EXPECT_EQ(r.generate.messages(2).role(), glm4v::v1::ROLE_ASSISTANT);
  EXPECT_EQ(r.generate.messages(2).metadata(), "get_weather");
  EXPECT_EQ(r.generate.messages(2).content(0).text(), "{\"city\": \"Paris\"}");
  EXPECT_EQ(r.generate.messages(3).role(), glm4v::v1::ROLE_OBSERVATION);

  // tool_choice "none": no tools in the prompt, no parsing.
  body["tools"] = {WeatherTool()};
  body["tool_choice"] = "none";
  ASSERT_TRUE(ParseChatCompletionRequest(body.dump(), chat_model, &r, &err)) << err.message;
  EXPECT_TRUE(r.tool_names.empty());
  EXPECT_EQ(r.generate.messages(0).role(), glm4v::v1::ROLE_USER);
}

TEST(ChatRequestTest, ANamedToolChoiceStartsTheAssistantTurnWithTheName) {
  ChatRequestLimits chat_model = kLimits;
  chat_model.accepts_tools = true;
  json other = WeatherTool();
  other["function"]["name"] = "get_time";
  json body = Base();
  body["tools"] = {WeatherTool(), other};
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  ChatCompletionRequest r;
  OpenAiError err;
  ASSERT_TRUE(ParseChatCompletionRequest(body.dump(), chat_model, &r, &err)) << err.message;
  EXPECT_EQ(r.forced_tool, "get_time");
  EXPECT_EQ(r.generate.assistant_prefix(), "get_time\n");
  // Both tools are still described to the model.
  EXPECT_NE(r.generate.messages(0).content(0).text().find("## get_weather"), std::string::npos);
  // "required" with one tool forces that one.
  body["tools"] = {WeatherTool()};
  body["tool_choice"] = "required";
  ChatCompletionRequest required;
  ASSERT_TRUE(ParseChatCompletionRequest(body.dump(), chat_model, &required, &err)) << err.message;
  EXPECT_EQ(required.forced_tool, "get_weather");
  EXPECT_EQ(required.generate.assistant_prefix(), "get_weather\n");
  // "auto" forces nothing.
  body["tool_choice"] = "auto";
  ChatCompletionRequest automatic;
  ASSERT_TRUE(ParseChatCompletionRequest(body.dump(), chat_model, &automatic, &err));
  EXPECT_TRUE(automatic.forced_tool.empty());
  EXPECT_TRUE(automatic.generate.assistant_prefix().empty());
}

TEST(ChatRequestTest, ToolErrorsNameTheField) {
  ChatRequestLimits chat_model = kLimits;
  chat_model.accepts_tools = true;
  auto fail = [&](const json& body, const ChatRequestLimits& limits) {
    ChatCompletionRequest r;
    OpenAiError err;
    EXPECT_FALSE(ParseChatCompletionRequest(body.dump(), limits, &r, &err)) << body;
    EXPECT_EQ(err.http_status, 400);
    return err.param;
  };
  json body = Base();
  body["tools"] = {WeatherTool()};
  EXPECT_EQ(fail(body, kLimits), "tools");  // GLM-4V-9B: no function calling
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  EXPECT_EQ(fail(body, chat_model), "tool_choice.function.name");  // not offered
  body["tool_choice"] = {{"type", "function"}, {"name", "get_weather"}};
  EXPECT_EQ(fail(body, chat_model), "tool_choice");  // the name belongs in "function"
  body["tool_choice"] = "sometimes";
  EXPECT_EQ(fail(body, chat_model), "tool_choice");
  body["tool_choice"] = 1;
  EXPECT_EQ(fail(body, chat_model), "tool_choice");
  json other = WeatherTool();
  other["function"]["name"] = "get_time";
  body["tools"] = {WeatherTool(), other};
  body["tool_choice"] = "required";  // which of two: GLM-4 cannot be made to choose
  EXPECT_EQ(fail(body, chat_model), "tool_choice");
  body.erase("tools");
  EXPECT_EQ(fail(body, chat_model), "tool_choice");  // required, but nothing offered
  body["tools"] = {WeatherTool()};
  body.erase("tool_choice");
  body["tools"][0]["function"]["name"] = "get weather";
  EXPECT_EQ(fail(body, chat_model), "tools[0].function.name");
  body["tools"] = {WeatherTool(), WeatherTool()};
  EXPECT_EQ(fail(body, chat_model), "tools[1].function.name");
  body["tools"] = {{{"type", "retrieval"}}};
  EXPECT_EQ(fail(body, chat_model), "tools[0].type");
  body["tools"] = {WeatherTool()};
  body["messages"].push_back({{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "x"}}}}}}});
  EXPECT_EQ(fail(body, chat_model), "messages[1].tool_calls[0].function.arguments");
  body = Base();
  body["functions"] = json::array({{{"name", "f"}}});
  EXPECT_EQ(fail(body, chat_model), "functions");
}

TEST(ChatRequestTest, SamplingFields) {
  json body = Base();
  body["max_tokens"] = 7;
  body["temperature"] = 0;
  body["top_p"] = 0.5;
  body["top_k"] = 40;
  body["seed"] = -1;
  body["stop"] = {"a", "bc"};
  body["repetition_penalty"] = 1.1;
  body["frequency_penalty"] = 0;
  body["presence_penalty"] = nullptr;
  body["n"] = 1;
  body["ignore_eos"] = true;
  body["stop_token_ids"] = {5, 6};
  const auto s = MustParse(body).generate.sampling();
  EXPECT_EQ(s.max_tokens(), 7u);
  EXPECT_TRUE(s.has_temperature());
  EXPECT_EQ(s.temperature(), 0.0f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.5f);
  EXPECT_EQ(s.top_k(), 40u);
  EXPECT_EQ(s.seed(), ~uint64_t{0});
  ASSERT_EQ(s.stop_size(), 2);
  EXPECT_EQ(s.stop(1), "bc");
  EXPECT_FLOAT_EQ(s.repetition_penalty(), 1.1f);
  EXPECT_TRUE(s.ignore_eos());
  ASSERT_EQ(s.stop_token_ids_size(), 2);
  EXPECT_EQ(s.stop_token_ids(1), 6u);
}

TEST(ChatRequestTest, MaxCompletionTokensWinsAndStopString) {
  json body = Base();
  body["max_tokens"] = 7;
  body["max_completion_tokens"] = 9;
  body["stop"] = "\n";
  const auto s = MustParse(body).generate.sampling();
  EXPECT_EQ(s.max_tokens(), 9u);
  ASSERT_EQ(s.stop_size(), 1);
  EXPECT_EQ(s.stop(0), "\n");
}

TEST(ChatRequestTest, StreamOptions) {
  json body = Base();
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  ChatCompletionRequest r = MustParse(body);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  body["stream"] = false;
  EXPECT_EQ(MustFail(body).param, "stream_options");
}

TEST(ChatRequestTest, Logprobs) {
  json body = Base();
  body["logprobs"] = true;
  ChatCompletionRequest r = MustParse(body);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  // The proto needs >= 1 to return anything; the response trims back to what was asked.
  EXPECT_EQ(r.generate.sampling().top_logprobs(), 1u);
  body["top_logprobs"] = 5;
  r = MustParse(body);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_EQ(r.generate.sampling().top_logprobs(), 5u);
  body["top_logprobs"] = 21;
  EXPECT_EQ(MustFail(body).param, "top_logprobs");
  body["top_logprobs"] = 2;
  body["logprobs"] = false;
  EXPECT_EQ(MustFail(body).param, "top_logprobs");
}

TEST(ChatRequestTest, BadValuesAndUnsupportedFeaturesAre400) {
  struct Case {
    const char* field;
    json value;
  };
  for (const Case& c : {Case{"frequency_penalty", 2.5}, Case{"presence_penalty", -3},
                        Case{"n", 17}, Case{"n", 0}, Case{"n", "2"},
                        Case{"tools", json::array({{{"type", "function"}}})},
                        Case{"logit_bias", {{"five", 1}}}, Case{"logit_bias", {{"5", 101}}},
                        Case{"logit_bias", {{"5", "1"}}}, Case{"logit_bias", json::array()},
                        Case{"user", 5},
                        Case{"response_format", {{"type", "json_object"}}}}) {
    json body = Base();
    body[c.field] = c.value;
    OpenAiError e = MustFail(body);
    EXPECT_EQ(e.http_status, 400) << c.field;
    EXPECT_EQ(e.param.rfind(c.field, 0), 0u) << c.field << " got param " << e.param;
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(ChatRequestTest, WrongTypesNameTheField) {
  struct Case {
    const char* field;
    json value;
  };
  for (const Case& c :
       {Case{"max_tokens", "10"}, Case{"max_tokens", 1.5}, Case{"max_tokens", 0},
        Case{"max_tokens", -3}, Case{"temperature", "hot"}, Case{"temperature", 3},
        Case{"top_p", 0}, Case{"top_k", -1}, Case{"seed", 1.5}, Case{"stream", "yes"},
        Case{"stop", 5}, Case{"model", 5}, Case{"repetition_penalty", 0},
        Case{"stop_token_ids", {-1}}, Case{"messages", "hi"}, Case{"messages", json::array()}}) {
    json body = Base();
    body[c.field] = c.value;
    OpenAiError e = MustFail(body);
    EXPECT_EQ(e.http_status, 400) << c.field << "=" << c.value;
    EXPECT_EQ(e.param.rfind(c.field, 0), 0u) << c.field << " got param " << e.param;
  }
}

TEST(ChatRequestTest, MessageErrorsNameTheIndex) {
  json body = Base();
  body["messages"].push_back({{"role", "wizard"}, {"content", "x"}});
  EXPECT_EQ(MustFail(body).param, "messages[1].role");
  body = Base();
  body["messages"].push_back({{"role", "user"}});
  EXPECT_EQ(MustFail(body).param, "messages[1].content");
  body = Base();
  body["messages"][0]["content"] = {{{"type", "audio"}}};
  EXPECT_EQ(MustFail(body).param, "messages[0].content[0].type");
  body["messages"][0]["content"] = {{{"type", "text"}, {"text", 3}}};
  EXPECT_EQ(MustFail(body).param, "messages[0].content[0].text");
  body["messages"][0]["content"] = {{{"type", "image_url"}, {"image_url", {{"url", 3}}}}};
  EXPECT_EQ(MustFail(body).param, "messages[0].content[0].image_url.url");
}

TEST(ChatRequestTest, MalformedJson) {
  for (const char* body : {"", "{", "[1,2]", "null", "{\"messages\": [}", "\"str\"",
                           "{\"messages\":\"\xff\"}"}) {
    OpenAiError e = MustFail(std::string(body));
    EXPECT_EQ(e.http_status, 400) << body;
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(ChatRequestTest, OtherModelIs404AndMissingModelIsAccepted) {
  json body = Base();
  body["model"] = "gpt-4o";
  OpenAiError e = MustFail(body);
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  body.erase("model");
  MustParse(body);
}

TEST(ChatRequestTest, UnknownFieldsAreIgnored) {
  json body = Base();
  body["user"] = "someone";
  body["metadata"] = {{"k", "v"}};
  body["tools"] = json::array();
  MustParse(body);
}

}  // namespace
}  // namespace glm4v::openai
