// A text-only long-context model (tests/data/long-glm4: GLM-4-9B-chat layout, no vision tower,
// rope_ratio 500, seq_length 1,048,576) served by gateway + workers without a vision service:
// its limits through GetModelInfo and /v1/models, images refused with INVALID_ARGUMENT, a prompt
// beyond the workers' context refused, and the 12,000-token float64 golden (greedy ids and the
// log-probabilities that chose them) at TP = 1, 2 and 4 with decode context parallelism 2.
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/safetensors.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

constexpr char kModelDir[] = "tests/data/long-glm4/model";

struct LongGolden {
  std::vector<uint32_t> input_ids;
  std::vector<uint32_t> greedy_ids;
  std::vector<std::vector<double>> step_logits;  // the logits that chose each greedy id
};

LongGolden LoadLongGolden() {
  const nlohmann::json spec =
      nlohmann::json::parse(ReadFileOrDie(RunfilePath("tests/data/long-glm4/golden.json")));
  const nlohmann::json& c = spec["cases"][0];
  auto tensors = SafetensorsFile::Open(RunfilePath("tests/data/long-glm4/golden.safetensors"));
  EXPECT_TRUE(tensors.ok()) << tensors.status();
  LongGolden g;
  const Tensor ids = (*tensors)->Get(c["input_ids"].get<std::string>()).value();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    g.input_ids.push_back(static_cast<uint32_t>(
        ids.dtype() == DType::kI64 ? ids.data<int64_t>()[i] : ids.data<int32_t>()[i]));
  }
  g.greedy_ids = c["greedy_ids"].get<std::vector<uint32_t>>();
  const Tensor steps = (*tensors)->Get(c["step_logits"].get<std::string>()).value().ToF32();
  for (int64_t r = 0; r < steps.dim(0); ++r) {
    const float* row = steps.data<float>() + r * steps.dim(1);
    g.step_logits.emplace_back(row, row + steps.dim(1));
  }
  return g;
}

StackOptions TextOnlyStack(int tp_size) {
  StackOptions options;
  options.model_dir = kModelDir;
  options.vision = false;
  options.tp_size = tp_size;
  return options;
}

// Greedy ids identical; each chosen token's log-probability within the CPU golden tolerance
// (logits within 1e-4 x max |golden|, so a log-softmax within twice that). Returns the prompt
// tokens the worker served from its prefix cache.
uint32_t ExpectLongGolden(Stack& stack, const LongGolden& golden) {
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Assign(golden.input_ids.begin(), golden.input_ids.end());
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_max_tokens(static_cast<uint32_t>(golden.greedy_ids.size()));
  request.mutable_sampling()->set_ignore_eos(true);
  request.mutable_sampling()->set_logprobs(true);
  auto stub = stack.GatewayStub();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(240)));
  v1::GenerateResponse response;
  const grpc::Status status = stub->Generate(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message() << "\n" << stack.LogTail(Stack::kWorker);
  if (!status.ok()) return 0;
  const std::vector<uint32_t> ids(response.token_ids().begin(), response.token_ids().end());
  EXPECT_EQ(ids, golden.greedy_ids) << "got " << absl::StrJoin(ids, ",");
  EXPECT_EQ(response.usage().prompt_tokens(), golden.input_ids.size());
  EXPECT_EQ(response.logprobs_size(), static_cast<int>(golden.greedy_ids.size()));
  const size_t steps =
      std::min(static_cast<size_t>(response.logprobs_size()), golden.greedy_ids.size());
  for (size_t i = 0; i < steps; ++i) {
    const std::vector<double>& logits = golden.step_logits[i];
    double max_abs = 0, max_logit = -INFINITY;
    for (double v : logits) {
      max_abs = std::max(max_abs, std::fabs(v));
      max_logit = std::max(max_logit, v);
    }
    double sum = 0;
    for (double v : logits) sum += std::exp(v - max_logit);
    const double want = logits[golden.greedy_ids[i]] - max_logit - std::log(sum);
    EXPECT_NEAR(response.logprobs(i).chosen().logprob(), want, 2e-4 * max_abs) << "step " << i;
  }
  return response.usage().cached_prompt_tokens();
}

// The golden twice: the second time its prompt comes from the prefix cache (all but the last,
// partial block) and gives the same answer.
void ExpectLongGoldenTwice(Stack& stack, const LongGolden& golden, uint32_t block_tokens) {
  EXPECT_EQ(ExpectLongGolden(stack, golden), 0u);
  const uint32_t cached = ExpectLongGolden(stack, golden);
  EXPECT_GE(cached, golden.input_ids.size() - block_tokens);
  EXPECT_LT(cached, golden.input_ids.size());
}

TEST(LongContextStackTest, TextOnlyModelServesWithoutAVisionService) {
  auto started = Stack::Start(TextOnlyStack(1));
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;
  auto stub = stack.GatewayStub();

  // Limits: the checkpoint's 1M context capped by the worker's KV capacity.
  auto stats = stack.WorkerStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  }
  EXPECT_FALSE(info.accepts_images());
  EXPECT_EQ(info.image_tokens(), 0u);
  EXPECT_EQ(info.seq_length(), 1048576u);
  EXPECT_EQ(info.context_length(), stats->max_model_len());
  EXPECT_LT(info.context_length(), info.seq_length());  // 32 MiB of KV: 65,536 tokens
  EXPECT_EQ(info.max_prompt_tokens(), info.context_length() - 1);

  // Text works; an image (chat part or top-level) is INVALID_ARGUMENT naming the reason.
  StreamResult text = RunStream(stub.get(), ChatRequest("Summarize the report.", "", 8));
  ASSERT_TRUE(text.status.ok()) << text.status.error_message();
  EXPECT_EQ(text.token_ids.size(), 8u);
  StreamResult image = RunStream(stub.get(), ChatRequest("What is this?", Image0Png(), 8));
  EXPECT_EQ(image.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(image.status.error_message().find("text-only"), std::string::npos)
      << image.status.error_message();
  v1::GenerateRequest ids_with_image;
  ids_with_image.add_prompt_token_ids(5);
  ids_with_image.add_images()->set_data(Image0Png());
  EXPECT_EQ(RunStream(stub.get(), ids_with_image).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A prompt that fills the whole context leaves no room for a token.
  v1::GenerateRequest too_long;
  for (uint32_t i = 0; i < info.context_length(); ++i) too_long.add_prompt_token_ids(i % 900);
  StreamResult refused = RunStream(stub.get(), too_long);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.status.error_message().find("context length"), std::string::npos)
      << refused.status.error_message();

  // The OpenAI front reports the same limits and answers 400 for an image.
  httplib::Client http("127.0.0.1", stack.http_port());
  http.set_read_timeout(30, 0);
  auto models = http.Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200) << models->body;
  const nlohmann::json listed = nlohmann::json::parse(models->body);
  EXPECT_EQ(listed["data"][0]["max_model_len"], info.context_length());
  EXPECT_EQ(listed["data"][0]["accepts_images"], false);
  const nlohmann::json chat = {
      {"model", "glm-4v-9b"},
      {"max_tokens", 4},
      {"messages",
       {{{"role", "user"},
         {"content",
          {{{"type", "text"}, {"text", "What is this?"}},
           {{"type", "image_url"},
            {"image_url",
             {{"url", "data:image/png;base64," + absl::Base64Escape(Image0Png())}}}}}}}}}};
  auto refused_http = http.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_TRUE(refused_http);
  EXPECT_EQ(refused_http->status, 400) << refused_http->body;
  EXPECT_NE(refused_http->body.find("text-only"), std::string::npos) << refused_http->body;

  ExpectLongGoldenTwice(stack, LoadLongGolden(), stats->kv_block_size());
}

// TP = 2 holds the model's 2 KV groups one per rank; TP = 4 replicates each group on two ranks,
// which with decode context parallelism 2 split its tokens: twice the context per rank.
TEST(LongContextStackTest, LongGoldenAtTp2AndTp4WithDecodeContextParallelism) {
  const LongGolden golden = LoadLongGolden();
  uint32_t tp2_context = 0;
  for (int tp : {2, 4}) {
    SCOPED_TRACE(absl::StrCat("tp ", tp));
    auto started = Stack::Start(TextOnlyStack(tp));
    ASSERT_TRUE(started.ok()) << started.status();
    Stack& stack = **started;
    auto stats = stack.WorkerStats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (tp == 2) {
      tp2_context = stats->max_model_len();
      EXPECT_EQ(stats->kv_block_size(), 16u);
    } else {
      EXPECT_EQ(stats->kv_block_size(), 32u);  // a block of every rank of a group: 16 tokens each
      EXPECT_EQ(stats->max_model_len(), 2 * tp2_context);
    }
    ExpectLongGoldenTwice(stack, golden, stats->kv_block_size());
  }
}

}  // namespace
}  // namespace glm4v::testing
