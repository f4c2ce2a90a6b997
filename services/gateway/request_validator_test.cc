#include "services/gateway/request_validator.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

v1::GenerateRequest TextRequest() {
  v1::GenerateRequest request;
  v1::ChatMessage* message = request.add_messages();
  message->set_role(v1::ROLE_USER);
  message->add_content()->set_text("hello");
  return request;
}

absl::StatusCode Code(const v1::GenerateRequest& request, const GatewayOptions& options = {}) {
  return ValidateGenerateRequest(request, options).code();
}

TEST(RequestValidatorTest, AcceptsAPlainRequest) {
  EXPECT_EQ(Code(TextRequest()), absl::StatusCode::kOk);
}

TEST(RequestValidatorTest, RejectsBadSamplingRanges) {
  auto with = [](auto mutate) {
    v1::GenerateRequest request = TextRequest();
    mutate(request.mutable_sampling());
    return Code(request);
  };
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_temperature(-0.1f); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_top_p(0); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_top_p(1.5f); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_repetition_penalty(0); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_max_tokens(0); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_max_tokens(1u << 30); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->add_stop(""); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_presence_penalty(2.5f); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_frequency_penalty(-2.01f); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { s->set_frequency_penalty(NAN); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) { (*s->mutable_logit_bias())[5] = 100.5f; }),
            absl::StatusCode::kInvalidArgument);
  GatewayOptions vocab;
  vocab.vocab_size = 1000;
  v1::GenerateRequest outside = TextRequest();
  (*outside.mutable_sampling()->mutable_logit_bias())[1000] = 1.0f;
  const absl::Status named = ValidateGenerateRequest(outside, vocab);
  EXPECT_EQ(named.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(named.message().find("sampling.logit_bias[1000]"), std::string::npos) << named;
  (*outside.mutable_sampling()->mutable_logit_bias()).clear();
  (*outside.mutable_sampling()->mutable_logit_bias())[999] = -100.0f;
  EXPECT_TRUE(ValidateGenerateRequest(outside, vocab).ok());
  GatewayOptions few;
  few.max_logit_bias_entries = 1;
  (*outside.mutable_sampling()->mutable_logit_bias())[3] = 1.0f;
  EXPECT_EQ(Code(outside, few), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](v1::SamplingParams* s) {
              s->set_presence_penalty(-2);
              s->set_frequency_penalty(2);
              (*s->mutable_logit_bias())[7] = -100;
            }),
            absl::StatusCode::kOk);
  EXPECT_EQ(with([](v1::SamplingParams* s) {
              s->set_temperature(0);
              s->set_top_p(1);
              s->set_max_tokens(5);
            }),
            absl::StatusCode::kOk);
}

TEST(RequestValidatorTest, RejectsBadStructure) {
  v1::GenerateRequest empty;
  EXPECT_EQ(Code(empty), absl::StatusCode::kInvalidArgument);

  v1::GenerateRequest both = TextRequest();
  both.add_prompt_token_ids(1);
  EXPECT_EQ(Code(both), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest text_and_messages = TextRequest();
  text_and_messages.set_prompt("Once upon a time");
  EXPECT_EQ(Code(text_and_messages), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest text;
  text.set_prompt("Once upon a time");
  EXPECT_EQ(Code(text), absl::StatusCode::kOk);
  text.add_images()->set_data("png");
  EXPECT_EQ(Code(text), absl::StatusCode::kInvalidArgument);
  GatewayOptions small;
  small.max_text_bytes = 4;
  text.clear_images();
  EXPECT_EQ(Code(text, small), absl::StatusCode::kInvalidArgument);

  v1::GenerateRequest no_role = TextRequest();
  no_role.mutable_messages(0)->set_role(v1::ROLE_UNSPECIFIED);
  EXPECT_EQ(Code(no_role), absl::StatusCode::kInvalidArgument);

  v1::GenerateRequest assistant_image = TextRequest();
  v1::ChatMessage* assistant = assistant_image.add_messages();
  assistant->set_role(v1::ROLE_ASSISTANT);
  assistant->add_content()->mutable_image()->set_data("png");
  EXPECT_EQ(Code(assistant_image), absl::StatusCode::kInvalidArgument);

  // An assistant prefix continues a chat turn: with messages only, within the text limit.
  v1::GenerateRequest prefixed = TextRequest();
  prefixed.set_assistant_prefix("get_weather\n");
  EXPECT_EQ(Code(prefixed), absl::StatusCode::kOk);
  EXPECT_EQ(Code(prefixed, small), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest prefixed_text;
  prefixed_text.set_prompt("Once");
  prefixed_text.set_assistant_prefix("x");
  EXPECT_EQ(Code(prefixed_text), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest prefixed_ids;
  prefixed_ids.add_prompt_token_ids(1);
  prefixed_ids.set_assistant_prefix("x");
  EXPECT_EQ(Code(prefixed_ids), absl::StatusCode::kInvalidArgument);
}

TEST(RequestValidatorTest, EnforcesImageLimits) {
  GatewayOptions options;
  options.max_image_bytes = 10;
  options.max_images_per_request = 1;
  v1::GenerateRequest request = TextRequest();
  request.mutable_messages(0)->add_content()->mutable_image()->set_data("0123456789");
  EXPECT_EQ(Code(request, options), absl::StatusCode::kOk);
  request.mutable_messages(0)->add_content()->mutable_image()->set_data("x");
  EXPECT_EQ(Code(request, options), absl::StatusCode::kInvalidArgument);  // two images

  v1::GenerateRequest big = TextRequest();
  big.mutable_messages(0)->add_content()->mutable_image()->set_data(std::string(11, 'x'));
  EXPECT_EQ(Code(big, options), absl::StatusCode::kInvalidArgument);

  v1::GenerateRequest ids;
  ids.add_prompt_token_ids(1);
  ids.add_images()->set_data("");
  EXPECT_EQ(Code(ids, options), absl::StatusCode::kInvalidArgument);  // empty image
}

TEST(RequestValidatorTest, TextOnlyModelsRefuseImagesNamingTheReason) {
  GatewayOptions options;
  options.model_name = "glm-4-9b-chat";
  options.accepts_images = false;
  EXPECT_EQ(Code(TextRequest(), options), absl::StatusCode::kOk);
  v1::GenerateRequest chat = TextRequest();
  chat.mutable_messages(0)->add_content()->mutable_image()->set_data("png bytes");
  const absl::Status status = ValidateGenerateRequest(chat, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'glm-4-9b-chat' is text-only"), std::string::npos) << status;

  v1::GenerateRequest ids;
  ids.add_prompt_token_ids(1);
  ids.add_images()->set_data("png bytes");
  EXPECT_EQ(Code(ids, options), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
