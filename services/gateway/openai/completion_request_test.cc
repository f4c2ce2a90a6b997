#include "services/gateway/openai/completion_request.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace glm4v::openai {
namespace {

using nlohmann::json;

const RequestLimits kLimits{"glm-4v-9b"};

CompletionRequest MustParse(const json& body) {
  CompletionRequest out;
  OpenAiError err;
  EXPECT_TRUE(ParseCompletionRequest(body.dump(), kLimits, &out, &err))
      << err.message << " param=" << err.param;
  return out;
}

OpenAiError MustFail(const json& body) {
  CompletionRequest out;
  OpenAiError err;
  EXPECT_FALSE(ParseCompletionRequest(body.dump(), kLimits, &out, &err)) << body;
  return err;
}

TEST(CompletionRequestTest, StringPromptWithSampling) {
  CompletionRequest r = MustParse({{"model", "glm-4v-9b"},
                                   {"prompt", "Once upon a time"},
                                   {"max_tokens", 5},
                                   {"temperature", 0},
                                   {"stop", {"\n"}},
                                   {"logit_bias", {{"7", -100}}},
                                   {"stream", true},
                                   {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].prompt(), "Once upon a time");
  EXPECT_EQ(r.prompts[0].sampling().max_tokens(), 5u);
  EXPECT_EQ(r.prompts[0].sampling().stop(0), "\n");
  EXPECT_EQ(r.prompts[0].sampling().logit_bias().at(7), -100.0f);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, -1);
  EXPECT_FALSE(r.prompts[0].sampling().logprobs());
}

TEST(CompletionRequestTest, TokenIdsAndBatches) {
  CompletionRequest ids = MustParse({{"prompt", {1, 2, 3}}});
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(ids.prompts[0].prompt_token_ids_size(), 3);
  CompletionRequest batch =
      MustParse({{"prompt", json::array({"a", json::array({4, 5}), "b"})}, {"n", 2}});
  ASSERT_EQ(batch.prompts.size(), 3u);
  EXPECT_EQ(batch.prompts[0].prompt(), "a");
  EXPECT_EQ(batch.prompts[1].prompt_token_ids(1), 5u);
  EXPECT_EQ(batch.prompts[2].prompt(), "b");
  EXPECT_EQ(batch.n, 2);
}

TEST(CompletionRequestTest, LegacyLogprobsAskForChosenAndAlternatives) {
  CompletionRequest r = MustParse({{"prompt", "x"}, {"logprobs", 3}});
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_TRUE(r.prompts[0].sampling().logprobs());
  EXPECT_EQ(r.prompts[0].sampling().top_logprobs(), 3u);
  CompletionRequest zero = MustParse({{"prompt", "x"}, {"logprobs", 0}});
  EXPECT_EQ(zero.logprobs, 0);
  EXPECT_TRUE(zero.prompts[0].sampling().logprobs());
}

TEST(CompletionRequestTest, BadFieldsAreNamed) {
  struct Case {
    json body;
    const char* param;
  } cases[] = {
      {{{"max_tokens", 3}}, "prompt"},
      {{{"prompt", 5}}, "prompt"},
      {{{"prompt", ""}}, "prompt"},
      {{{"prompt", json::array()}}, "prompt"},
      {{{"prompt", json::array({"a", 5})}}, "prompt[1]"},
      {{{"prompt", json::array({json::array({1, -2})})}}, "prompt[0][1]"},
      {{{"prompt", json::array({1, "x"})}}, "prompt[1]"},
      {{{"prompt", "x"}, {"echo", true}}, "echo"},
      {{{"prompt", "x"}, {"suffix", "end"}}, "suffix"},
      {{{"prompt", "x"}, {"best_of", 3}}, "best_of"},
      {{{"prompt", "x"}, {"logprobs", 6}}, "logprobs"},
      {{{"prompt", "x"}, {"logprobs", true}}, "logprobs"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"presence_penalty", 3}}, "presence_penalty"},
      {{{"prompt", "x"}, {"model", "gpt-3.5-turbo-instruct"}}, "model"},
  };
  for (const Case& c : cases) {
    OpenAiError e = MustFail(c.body);
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_TRUE(e.http_status == 400 || e.http_status == 404) << c.body;
  }
  // echo false, an empty suffix and best_of == n are what OpenAI's defaults send.
  MustParse({{"prompt", "x"}, {"echo", false}, {"suffix", ""}, {"best_of", 1}});
}

TEST(CompletionRequestTest, MalformedJson) {
  CompletionRequest out;
  OpenAiError err;
  EXPECT_FALSE(ParseCompletionRequest("{\"prompt\":", kLimits, &out, &err));
  EXPECT_EQ(err.http_status, 400);
}

}  // namespace
}  // namespace glm4v::openai
