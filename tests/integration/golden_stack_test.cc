// The whole stack (vision + 2 workers + gateway as separate processes) reproduces the golden
// greedy ids for the multimodal and the text prompt, while other requests run concurrently.
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "services/gateway/tokenizer/tokenizer.h"
#include "tests/integration/stack_test_util.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

TEST(GoldenStackTest, GreedyIdsMatchTheGoldenThroughThePublicApi) {
  StackOptions options;
  options.num_workers = 2;
  auto started = Stack::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  Stack& stack = **started;

  const GoldenCase multimodal = LoadGoldenCase("multimodal");
  const GoldenCase text = LoadGoldenCase("text");
  ASSERT_TRUE(multimodal.has_image);

  // Golden requests (streaming and unary) interleaved with sampled chat requests.
  struct Outcome {
    grpc::Status status;
    std::vector<uint32_t> ids;
    v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
    uint32_t prompt_tokens = 0;
    uint32_t completion_tokens = 0;
  };
  constexpr int kRounds = 2;
  std::vector<Outcome> mm_stream(kRounds), text_stream(kRounds), mm_unary(kRounds),
      text_unary(kRounds), chat(kRounds * 2);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRounds; ++r) {
    auto stream = [&stack](const GoldenCase& golden, Outcome* out) {
      auto stub = stack.GatewayStub();
      StreamResult result = RunStream(stub.get(), GoldenRequest(golden));
      out->status = result.status;
      out->ids = result.token_ids;
      out->finish = result.last.finish_reason();
      out->prompt_tokens = result.last.usage().prompt_tokens();
      out->completion_tokens = result.last.usage().completion_tokens();
    };
    auto unary = [&stack](const GoldenCase& golden, Outcome* out) {
      auto stub = stack.GatewayStub();
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      v1::GenerateResponse response;
      out->status = stub->Generate(&context, GoldenRequest(golden), &response);
      out->ids.assign(response.token_ids().begin(), response.token_ids().end());
      out->finish = response.finish_reason();
      out->prompt_tokens = response.usage().prompt_tokens();
      out->completion_tokens = response.usage().completion_tokens();
    };
    threads.emplace_back(stream, multimodal, &mm_stream[r]);
    threads.emplace_back(stream, text, &text_stream[r]);
    threads.emplace_back(unary, multimodal, &mm_unary[r]);
    threads.emplace_back(unary, text, &text_unary[r]);
    for (int k = 0; k < 2; ++k) {
      threads.emplace_back([&stack, &chat, r, k]() {
        auto stub = stack.GatewayStub();
        StreamResult result = RunStream(
            stub.get(), ChatRequest("What is in this image?", k == 0 ? Image0Png() : "", 40));
        chat[r * 2 + k].status = result.status;
        chat[r * 2 + k].ids = result.token_ids;
      });
    }
  }
  for (auto& t : threads) t.join();

  const int mm_prompt_rows = static_cast<int>(multimodal.input_ids.size()) + 18 - 3;
  auto check = [](const Outcome& out, const GoldenCase& golden, int prompt_rows, const char* what) {
    ASSERT_TRUE(out.status.ok()) << what << ": " << out.status.error_message();
    EXPECT_EQ(out.ids, golden.greedy_ids) << what << ": got " << absl::StrJoin(out.ids, ",")
                                          << " want " << absl::StrJoin(golden.greedy_ids, ",");
    EXPECT_EQ(out.finish, v1::FINISH_REASON_LENGTH) << what;
    EXPECT_EQ(out.prompt_tokens, static_cast<uint32_t>(prompt_rows)) << what;
    EXPECT_EQ(out.completion_tokens, golden.greedy_ids.size()) << what;
  };
  for (int r = 0; r < kRounds; ++r) {
    check(mm_stream[r], multimodal, mm_prompt_rows, "multimodal stream");
    check(mm_unary[r], multimodal, mm_prompt_rows, "multimodal unary");
    check(text_stream[r], text, static_cast<int>(text.input_ids.size()), "text stream");
    check(text_unary[r], text, static_cast<int>(text.input_ids.size()), "text unary");
  }
  for (const Outcome& out : chat) {
    ASSERT_TRUE(out.status.ok()) << out.status.error_message();
    EXPECT_EQ(out.ids.size(), 40u);
  }
  // Same seed, same prompt -> same tokens whatever else was batched with it.
  EXPECT_EQ(chat[0].ids, chat[2].ids);
  EXPECT_EQ(chat[1].ids, chat[3].ids);

  // Streamed text is the detokenized ids; a stop string cuts it and ends the request.
  auto tok = tokenizer::Tokenizer::LoadFromDir(RunfilePath("tests/data/tiny-glm4v/tokenizer"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::vector<tokenizer::TokenId> greedy(text.greedy_ids.begin(), text.greedy_ids.end());
  const std::string full = *(*tok)->Decode(greedy);
  auto stub = stack.GatewayStub();
  StreamResult plain = RunStream(stub.get(), GoldenRequest(text));
  ASSERT_TRUE(plain.status.ok()) << plain.status.error_message();
  EXPECT_EQ(plain.text, full);

  const std::string stop = *(*tok)->Decode(absl::MakeConstSpan(greedy).subspan(6, 2));
  ASSERT_FALSE(stop.empty());
  v1::GenerateRequest with_stop = GoldenRequest(text);
  with_stop.mutable_sampling()->add_stop(stop);
  StreamResult stopped = RunStream(stub.get(), with_stop);
  ASSERT_TRUE(stopped.status.ok()) << stopped.status.error_message();
  EXPECT_EQ(stopped.last.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(stopped.last.matched_stop(), stop);
  EXPECT_EQ(stopped.text, full.substr(0, full.find(stop)));
  // Tokens arrive in batches, so the ids may run past the stop string; the text never does.
  EXPECT_LE(stopped.token_ids.size(), text.greedy_ids.size());
}

}  // namespace
}  // namespace glm4v::testing
