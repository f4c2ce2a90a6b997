#include "tools/loadgen/prompt_factory.h"

#include "gtest/gtest.h"

namespace glm4v::loadgen {
namespace {

PromptOptions Tokens() {
  PromptOptions o;
  o.input_len = 20;
  o.output_len = 8;
  o.token_id_min = 10;
  o.token_id_max = 1000;
  o.boi_id = 1001;
  o.placeholder_id = 1000;
  o.eoi_id = 1002;
  return o;
}

TEST(PromptFactoryTest, TokenPromptsHaveExactLengthAndRange) {
  auto f = PromptFactory::Create(Tokens(), 1);
  ASSERT_TRUE(f.ok());
  for (int i = 0; i < 50; ++i) {
    bool img = true;
    auto req = f->Next(&img);
    EXPECT_FALSE(img);
    ASSERT_EQ(req.prompt_token_ids_size(), 20);
    for (uint32_t id : req.prompt_token_ids()) {
      EXPECT_GE(id, 10u);
      EXPECT_LT(id, 1000u);
    }
    EXPECT_EQ(req.sampling().max_tokens(), 8u);
    EXPECT_TRUE(req.sampling().ignore_eos());
    EXPECT_EQ(req.messages_size(), 0);
  }
}

TEST(PromptFactoryTest, ImageFractionAndTriple) {
  PromptOptions o = Tokens();
  o.image_fraction = 0.5;
  o.image_bytes = "PNGDATA";
  o.image_mime = "image/png";
  o.range_ratio = 0.5;
  auto f = PromptFactory::Create(o, 3);
  ASSERT_TRUE(f.ok());
  int images = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    bool img = false;
    auto req = f->Next(&img);
    const int text_len = req.prompt_token_ids_size() - (img ? 3 : 0);
    EXPECT_GE(text_len, 10);
    EXPECT_LE(text_len, 30);
    if (!img) {
      EXPECT_EQ(req.images_size(), 0);
      continue;
    }
    ++images;
    ASSERT_EQ(req.images_size(), 1);
    EXPECT_EQ(req.images(0).data(), "PNGDATA");
    EXPECT_EQ(req.prompt_token_ids(0), 1001u);
    EXPECT_EQ(req.prompt_token_ids(1), 1000u);
    EXPECT_EQ(req.prompt_token_ids(2), 1002u);
  }
  EXPECT_NEAR(images / static_cast<double>(n), 0.5, 0.05);
}

TEST(PromptFactoryTest, ChatMode) {
  PromptOptions o = Tokens();
  o.chat = true;
  o.image_fraction = 1.0;
  o.image_bytes = "JPG";
  auto f = PromptFactory::Create(o, 1);
  ASSERT_TRUE(f.ok());
  bool img = false;
  auto req = f->Next(&img);
  EXPECT_TRUE(img);
  EXPECT_EQ(req.prompt_token_ids_size(), 0);
  ASSERT_EQ(req.messages_size(), 1);
  ASSERT_EQ(req.messages(0).content_size(), 2);
  EXPECT_TRUE(req.messages(0).content(0).has_image());
  const std::string& text = req.messages(0).content(1).text();
  EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 19);  // 20 words
}

// Multi-turn: conversations interleave, each turn repeats its conversation's history (so
// consecutive turns of one conversation share a growing prefix) under one system prompt.
TEST(PromptFactoryTest, MultiTurnConversationsGrowAndShareTheSystemPrompt) {
  PromptOptions options;
  options.chat = true;
  options.conversations = 2;
  options.turns = 3;
  options.system_prompt_words = 10;
  options.images = {"png-a", "png-b"};
  auto factory = PromptFactory::Create(options, 7);
  ASSERT_TRUE(factory.ok()) << factory.status();
  std::vector<glm4v::v1::GenerateRequest> requests;
  for (int i = 0; i < 7; ++i) {
    bool has_image = false;
    requests.push_back(factory->Next(&has_image));
    EXPECT_TRUE(has_image);
  }
  // Request k: conversation k % 2, turn (k / 2) % 3 -> 1 system + 2 * turn + 1 messages.
  for (int k = 0; k < 7; ++k) {
    const int turn = (k / 2) % 3;
    ASSERT_EQ(requests[k].messages_size(), 2 + 2 * turn) << k;
    if (k == 6) {  // a new pass: new questions about the same image
      EXPECT_NE(requests[k].messages(1).content(1).text(),
                requests[0].messages(1).content(1).text());
    }
    EXPECT_EQ(requests[k].messages(0).content(0).text(),
              requests[0].messages(0).content(0).text());
    EXPECT_EQ(requests[k].messages(1).content(0).image().data(), k % 2 == 0 ? "png-a" : "png-b");
  }
  // Turn 1 of conversation 0 starts with turn 0's messages.
  EXPECT_EQ(requests[2].messages(1).content(1).text(), requests[0].messages(1).content(1).text());
  options.images.clear();
  EXPECT_FALSE(PromptFactory::Create(options, 7).ok());
  options.images = {"x"};
  options.chat = false;
  EXPECT_FALSE(PromptFactory::Create(options, 7).ok());
}

TEST(PromptFactoryTest, RejectsBadOptions) {
  PromptOptions o = Tokens();
  o.image_fraction = 0.2;  // but no image
  EXPECT_FALSE(PromptFactory::Create(o, 1).ok());
  o = Tokens();
  o.token_id_max = o.token_id_min;
  EXPECT_FALSE(PromptFactory::Create(o, 1).ok());
  o = Tokens();
  o.range_ratio = 1.0;
  EXPECT_FALSE(PromptFactory::Create(o, 1).ok());
}

TEST(PromptFactoryTest, ApplyModelConfigKeepsIdsBelowSpecials) {
  ModelConfig c;  // the tiny test model's ids
  c.padded_vocab_size = 1024;
  c.eos_token_ids = {1000, 1003, 1007};
  c.pad_token_id = 1000;
  c.boi_token_id = 1001;
  c.eoi_token_id = 1002;
  PromptOptions o;
  ApplyModelConfig(c, &o);
  EXPECT_EQ(o.boi_id, 1001u);
  EXPECT_EQ(o.placeholder_id, 1000u);
  EXPECT_EQ(o.eoi_id, 1002u);
  EXPECT_EQ(o.token_id_max, 1000u);
}

TEST(PromptFactoryTest, DeterministicForASeed) {
  auto a = PromptFactory::Create(Tokens(), 9), b = PromptFactory::Create(Tokens(), 9);
  bool ia, ib;
  EXPECT_EQ(a->Next(&ia).SerializeAsString(), b->Next(&ib).SerializeAsString());
}

}  // namespace
}  // namespace glm4v::loadgen
