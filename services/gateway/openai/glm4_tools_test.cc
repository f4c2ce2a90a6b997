#include "services/gateway/openai/glm4_tools.h"

#include "gtest/gtest.h"

namespace glm4v::openai {
namespace {

const std::vector<std::string> kTools = {"get_weather", "search-web"};

TEST(Glm4ToolsTest, SystemPromptIsTheTrainedLayout) {
  nlohmann::ordered_json f = nlohmann::ordered_json::parse(
      R"({"name":"get_weather","description":"天气","parameters":{"type":"object","properties":{}}})");
  const std::string prompt = Glm4ToolsSystemPrompt({f});
  EXPECT_EQ(prompt,
            "你是一个名为 GLM-4 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
            "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具\n\n## get_weather\n\n"
            "{\n    \"name\": \"get_weather\",\n    \"description\": \"天气\",\n"
            "    \"parameters\": {\n        \"type\": \"object\",\n        \"properties\": {}\n"
            "    }\n}\n在调用上述函数时，请使用 Json 格式表示调用的参数。");
}

TEST(Glm4ToolsTest, ParsesCallsAndLeavesAnswersAlone) {
  auto call = ParseGlm4ToolCall("get_weather\n{\"city\": \"Paris\"}", kTools);
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->name, "get_weather");
  EXPECT_EQ(call->arguments, "{\"city\": \"Paris\"}");
  // Multi-line JSON arguments, surrounding whitespace.
  call = ParseGlm4ToolCall("search-web\n{\n  \"q\": \"x\"\n}\n", kTools);
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->name, "search-web");
  // Not calls: an ordinary answer, an unknown function, arguments that are not a JSON object.
  EXPECT_FALSE(ParseGlm4ToolCall("\nThe weather is fine.", kTools));
  EXPECT_FALSE(ParseGlm4ToolCall("delete_all\n{}", kTools));
  EXPECT_FALSE(ParseGlm4ToolCall("get_weather\n{\"city\": ", kTools));
  EXPECT_FALSE(ParseGlm4ToolCall("get_weather\n[1, 2]", kTools));
  EXPECT_FALSE(ParseGlm4ToolCall("get_weather", kTools));
}

TEST(Glm4ToolsTest, StreamingDecidesOnTheFirstCharacter) {
  EXPECT_TRUE(MayBeToolCall(""));
  EXPECT_TRUE(MayBeToolCall("get_wea"));
  EXPECT_FALSE(MayBeToolCall("\nHello"));
  EXPECT_FALSE(MayBeToolCall(" Hello"));
}

TEST(Glm4ToolsTest, FunctionNames) {
  EXPECT_TRUE(ValidFunctionName("get_weather-2"));
  EXPECT_FALSE(ValidFunctionName(""));
  EXPECT_FALSE(ValidFunctionName("get weather"));
  EXPECT_FALSE(ValidFunctionName("a\nb"));
  EXPECT_FALSE(ValidFunctionName(std::string(65, 'a')));
}

}  // namespace
}  // namespace glm4v::openai
