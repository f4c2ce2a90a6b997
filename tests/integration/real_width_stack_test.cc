// GLM-4V-9B's real widths through the real processes. A random-weight checkpoint of the exact
// widths (hidden 4096, 32 heads / 2 KV groups, FFN 13,696, vocabulary 151,552; vision 1120x1120,
// 1792 wide, 16 heads, MLP 15,360) with 2 decoder and 2 vision layers, 3.75 GiB of bf16, is
// written at the start (model/testing/streaming_checkpoint.h). One image question (a 1120x1120
// PNG: 1,602 feature rows, on the wire in bf16) and one text question go through vision +
// worker + gateway as processes at TP = 1 and TP = 2 (socket collectives); their greedy ids must
// equal tools/generate's on the same checkpoint.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "model/testing/glm4v_9b_config.h"
#include "model/testing/streaming_checkpoint.h"
#include "nlohmann/json.hpp"
#include "services/gateway/tokenizer/special_tokens.h"
#include "tests/integration/stack_test_util.h"
#include "common/process_memory.h"
#include "tests/stack/service_stack.h"

namespace glm4v::testing {
namespace {

constexpr int kNewTokens = 6;
constexpr char kImage[] = "tests/data/real_width/image1120.png";

// GLM-4's chat layout: [gMASK] <sop> <|user|> \n [<|begin_of_image|> <|endoftext|>
// <|end_of_image|>] question <|assistant|>. The question ids are arbitrary ordinary tokens.
std::vector<uint32_t> PromptIds(bool with_image) {
  std::vector<uint32_t> ids = {151331, 151333, 151336, 198};
  if (with_image) ids.insert(ids.end(), {151339, 151329, 151340});
  ids.insert(ids.end(), {3838, 374, 419, 2168, 30, 151337});
  return ids;
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// tools/generate's greedy ids (features rounded to bf16, as the wire carries them).
std::vector<uint32_t> GenerateIds(const std::string& model_dir, bool with_image) {
  std::string command = absl::StrCat(
      RunfilePath("tools/generate/generate"), " --model_dir=", model_dir, " --prompt_ids=",
      absl::StrJoin(PromptIds(with_image), ","), " --max_new_tokens=", kNewTokens,
      " --ignore_eos --feature_dtype=bf16");
  if (with_image) absl::StrAppend(&command, " --image=", RunfilePath(kImage));
  const absl::Time start = absl::Now();
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  if (pclose(pipe) != 0) return {};
  std::fprintf(stderr, "tools/generate (%s): %.1f s\n", with_image ? "image" : "text",
               absl::ToDoubleSeconds(absl::Now() - start));
  std::vector<uint32_t> ids;
  for (absl::string_view part : absl::StrSplit(absl::StripAsciiWhitespace(out), ',')) {
    uint32_t id;
    if (absl::SimpleAtoi(part, &id)) ids.push_back(id);
  }
  return ids;
}

// The tiny test tokenizer's ranks with GLM-4's special tokens at their real ids (151,329 + k,
// GLM-4's order), so the gateway's image and chat ids match the real config.
std::string WriteRealIdTokenizer(const std::string& dir) {
  mkdir(dir.c_str(), 0755);
  const std::string model = dir + "/tokenizer.model";
  std::ofstream(model, std::ios::binary)
      << ReadFileOrDie(RunfilePath("tests/data/tiny-glm4v/tokenizer/tokenizer.model"));
  nlohmann::json added;
  const absl::Span<const absl::string_view> names = tokenizer::Glm4SpecialTokenNames();
  for (size_t k = 0; k < names.size(); ++k) {
    added[std::to_string(151329 + k)] = {{"content", std::string(names[k])}, {"special", true}};
  }
  std::ofstream(dir + "/tokenizer_config.json")
      << nlohmann::json{{"added_tokens_decoder", added}}.dump(2);
  return model;
}

v1::GenerateRequest Request(bool with_image) {
  v1::GenerateRequest request;
  const std::vector<uint32_t> ids = PromptIds(with_image);
  request.mutable_prompt_token_ids()->Assign(ids.begin(), ids.end());
  if (with_image) {
    v1::ImagePart* image = request.add_images();
    image->set_data(ReadFileOrDie(RunfilePath(kImage)));
    image->set_mime_type("image/png");
  }
  v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_temperature(0);
  sampling->set_max_tokens(kNewTokens);
  sampling->set_ignore_eos(true);
  return request;
}

TEST(RealWidthStackTest, ImageAndTextQuestionsAtTp1AndTp2GiveToolsGenerateIds) {
  const std::string model_dir = TempDir() + "/glm4v-9b-2x2";
  // 3.75 GiB: gone when the test ends, pass or fail.
  struct RemoveWhenDone {
    std::string dir;
    ~RemoveWhenDone() { std::filesystem::remove_all(dir); }
  } cleanup{model_dir};
  absl::Time start = absl::Now();
  ASSERT_TRUE(WriteRandomCheckpoint(model_dir, Glm4v9bConfigJson(/*decoder_layers=*/2,
                                                                  /*vision_layers=*/2))
                  .ok());
  std::fprintf(stderr, "checkpoint written: %.1f s\n", absl::ToDoubleSeconds(absl::Now() - start));

  const std::string tokenizer = WriteRealIdTokenizer(TempDir() + "/tokenizer");
  const std::vector<uint32_t> want_image = GenerateIds(model_dir, true);
  const std::vector<uint32_t> want_text = GenerateIds(model_dir, false);
  ASSERT_EQ(want_image.size(), static_cast<size_t>(kNewTokens)) << "tools/generate failed";
  ASSERT_EQ(want_text.size(), static_cast<size_t>(kNewTokens)) << "tools/generate failed";

  for (const int tp : {1, 2}) {
    SCOPED_TRACE(absl::StrCat("TP = ", tp));
    StackOptions options;
    options.model_dir = model_dir;
    options.tokenizer_path = tokenizer;
    options.tp_size = tp;
    options.start_timeout = absl::Minutes(5);
    options.worker_kv_cache_bytes = int64_t{64} << 20;
    // A CPU without AVX-512 takes about twice this machine's time for the two vision layers.
    options.gateway_flags = {"--vision_feature_dtype=bfloat16", "--vision_timeout_seconds=300"};
    if (tp > 1) options.worker_flags = {"--tp_collectives=socket", "--tp_timeout_ms=120000"};
    start = absl::Now();
    auto stack = Stack::Start(options);
    ASSERT_TRUE(stack.ok()) << stack.status();
    std::fprintf(stderr, "TP %d: stack up in %.1f s\n", tp,
                 absl::ToDoubleSeconds(absl::Now() - start));
    auto gateway = (*stack)->GatewayStub();

    start = absl::Now();
    StreamResult image = RunStream(gateway.get(), Request(true), absl::Minutes(5));
    ASSERT_TRUE(image.status.ok()) << image.status.error_message() << "\n"
                                   << (*stack)->LogTail(Stack::kGateway) << "\n"
                                   << (*stack)->LogTail(Stack::kVision) << "\n"
                                   << (*stack)->LogTail(Stack::kWorker);
    std::fprintf(stderr, "TP %d: image question %.1f s\n", tp,
                 absl::ToDoubleSeconds(absl::Now() - start));
    EXPECT_EQ(image.token_ids, want_image);
    // 1,602 feature rows replaced the 3 image ids.
    EXPECT_EQ(image.last.usage().prompt_tokens(), PromptIds(true).size() - 3 + 1602);

    for (const Stack::Service service : {Stack::kVision, Stack::kWorker}) {
      absl::StatusOr<int64_t> rss = ReadResidentKiB((*stack)->pid(service));
      if (rss.ok()) {
        std::fprintf(stderr, "TP %d: %s resident %.2f GiB\n", tp,
                     service == Stack::kVision ? "vision" : "worker rank 0",
                     *rss / double(1 << 20));
      }
    }

    start = absl::Now();
    StreamResult text = RunStream(gateway.get(), Request(false), absl::Minutes(2));
    ASSERT_TRUE(text.status.ok()) << text.status.error_message();
    std::fprintf(stderr, "TP %d: text question %.1f s\n", tp,
                 absl::ToDoubleSeconds(absl::Now() - start));
    EXPECT_EQ(text.token_ids, want_text);

    if (tp == 1) {
      // logit_bias and the penalties at the real vocabulary (151,552): a ban and a forced id
      // near its end, through gateway, worker and the host sampler.
      v1::GenerateRequest biased = Request(false);
      auto& bias = *biased.mutable_sampling()->mutable_logit_bias();
      bias[want_text[0]] = -100;
      bias[151000] = 100;
      biased.mutable_sampling()->set_presence_penalty(2);
      biased.mutable_sampling()->set_frequency_penalty(2);
      StreamResult forced = RunStream(gateway.get(), biased, absl::Minutes(2));
      ASSERT_TRUE(forced.status.ok()) << forced.status.error_message();
      EXPECT_EQ(forced.token_ids, std::vector<uint32_t>(kNewTokens, 151000));
    }
  }
}

}  // namespace
}  // namespace glm4v::testing
