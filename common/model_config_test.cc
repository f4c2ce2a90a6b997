#include "common/model_config.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace glm4v {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kTinyDir[] = "tests/data/tiny-glm4v/model";

json TinyJson() {
  std::ifstream in(std::string(kTinyDir) + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  EXPECT_FALSE(j.is_discarded());
  return j;
}

// Parses `j` and expects an error whose message names the source and contains `needle`.
void ExpectError(const json& j, const std::string& needle) {
  auto c = ParseModelConfig(j.dump(), "cfg/config.json");
  ASSERT_FALSE(c.ok()) << "accepted; expected error about " << needle;
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("cfg/config.json"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(needle));
}

TEST(ModelConfigTest, TinyConfigValues) {
  auto c = LoadModelConfig(kTinyDir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->num_layers, 2);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->multi_query_group_num, 2);
  EXPECT_EQ(c->kv_channels, 16);
  EXPECT_EQ(c->ffn_hidden_size, 96);
  EXPECT_EQ(c->padded_vocab_size, 1024);
  EXPECT_DOUBLE_EQ(c->layernorm_epsilon, 1.5625e-7);
  EXPECT_DOUBLE_EQ(c->rope_ratio, 1.0);
  EXPECT_EQ(c->seq_length, 2048);
  EXPECT_TRUE(c->add_qkv_bias);
  EXPECT_FALSE(c->add_bias_linear);
  EXPECT_TRUE(c->rmsnorm);
  EXPECT_TRUE(c->post_layer_norm);
  EXPECT_TRUE(c->original_rope);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int>{1000, 1003, 1007}));
  EXPECT_EQ(c->pad_token_id, 1000);
  EXPECT_EQ(c->boi_token_id, 1001);
  EXPECT_EQ(c->eoi_token_id, 1002);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_EQ(c->q_size(), 64);
  EXPECT_EQ(c->kv_size(), 32);
  EXPECT_EQ(c->qkv_size(), 128);
  EXPECT_EQ(c->heads_per_group(), 2);
  EXPECT_EQ(c->rotary_dim(), 8);

  const VisionConfig& v = c->vision;
  EXPECT_EQ(v.image_size, 112);
  EXPECT_EQ(v.patch_size, 14);
  EXPECT_EQ(v.in_channels, 3);
  EXPECT_EQ(v.hidden_size, 32);
  EXPECT_EQ(v.num_hidden_layers, 2);
  EXPECT_EQ(v.num_heads, 4);
  EXPECT_EQ(v.intermediate_size, 80);
  EXPECT_DOUBLE_EQ(v.layer_norm_eps, 1e-6);
  EXPECT_EQ(v.num_positions, 65);
  EXPECT_DOUBLE_EQ(v.scaling_factor, 8);
  EXPECT_EQ(v.hidden_act, "gelu");
  EXPECT_EQ(v.grid(), 8);
  EXPECT_EQ(v.image_tokens(), 16);
  EXPECT_EQ(v.feature_rows(), 18);
  EXPECT_EQ(v.head_dim(), 8);
}

TEST(ModelConfigTest, RopeRatioDefaultAndOverride) {
  json j = TinyJson();
  j.erase("rope_ratio");
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_ratio, 1.0);
  EXPECT_DOUBLE_EQ(c->rope_base(), 10000.0);
  j["rope_ratio"] = 500;  // an integer is a valid number
  c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_base(), 5e6);
}

TEST(ModelConfigTest, EosAsSingleIntAndPadDefault) {
  json j = TinyJson();
  j["eos_token_id"] = 1005;
  j.erase("pad_token_id");
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->eos_token_ids, std::vector<int>{1005});
  EXPECT_EQ(c->pad_token_id, 1005);
}

// GLM-4-9B-chat's layout: no vision_config and no image ids. A model with a vision tower must
// still state its image ids.
TEST(ModelConfigTest, TextOnlyConfigsHaveNoVisionAndNoImageIds) {
  json j = TinyJson();
  j.erase("vision_config");
  j.erase("boi_token_id");
  j.erase("eoi_token_id");
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->has_vision);
  EXPECT_EQ(c->boi_token_id, -1);
  EXPECT_EQ(c->eoi_token_id, -1);
  auto with_vision = ParseModelConfig(TinyJson().dump());
  ASSERT_TRUE(with_vision.ok());
  EXPECT_TRUE(with_vision->has_vision);
  auto long_model = LoadModelConfig("tests/data/long-glm4/model");
  ASSERT_TRUE(long_model.ok()) << long_model.status();
  EXPECT_FALSE(long_model->has_vision);
  EXPECT_EQ(long_model->seq_length, 1048576);
  EXPECT_EQ(long_model->rope_ratio, 500.0);
}

TEST(ModelConfigTest, MissingFieldsAreNamed) {
  for (const char* field :
       {"hidden_size", "num_layers", "num_attention_heads", "multi_query_group_num", "kv_channels",
        "ffn_hidden_size", "padded_vocab_size", "layernorm_epsilon", "seq_length", "add_qkv_bias",
        "add_bias_linear", "rmsnorm", "post_layer_norm", "original_rope", "eos_token_id",
        "boi_token_id", "eoi_token_id"}) {
    json j = TinyJson();
    j.erase(field);
    ExpectError(j, std::string("\"") + field + "\" is missing");
  }
  for (const char* field :
       {"image_size", "patch_size", "in_channels", "hidden_size", "num_hidden_layers", "num_heads",
        "intermediate_size", "layer_norm_eps", "num_positions", "scaling_factor"}) {
    json j = TinyJson();
    j["vision_config"].erase(field);
    ExpectError(j, std::string("\"vision_config.") + field + "\" is missing");
  }
}

TEST(ModelConfigTest, WrongTypesAreNamed) {
  json j = TinyJson();
  j["hidden_size"] = "64";
  ExpectError(j, "\"hidden_size\" must be an integer");
  j = TinyJson();
  j["hidden_size"] = 64.5;
  ExpectError(j, "\"hidden_size\" must be an integer");
  j = TinyJson();
  j["num_layers"] = 1ll << 40;
  ExpectError(j, "\"num_layers\" is out of range");
  j = TinyJson();
  j["rmsnorm"] = 1;
  ExpectError(j, "\"rmsnorm\" must be a boolean");
  j = TinyJson();
  j["layernorm_epsilon"] = "1e-5";
  ExpectError(j, "\"layernorm_epsilon\" must be a number");
  j = TinyJson();
  j["eos_token_id"] = json::array({1000, "x"});
  ExpectError(j, "\"eos_token_id\" must be an integer");
  j = TinyJson();
  j["eos_token_id"] = json::array();
  ExpectError(j, "\"eos_token_id\" must not be an empty list");
  j = TinyJson();
  j["vision_config"] = 3;
  ExpectError(j, "\"vision_config\" must be an object");
  j = TinyJson();
  j["vision_config"]["hidden_act"] = "relu";
  ExpectError(j, "vision_config.hidden_act");
  j = TinyJson();
  j["torch_dtype"] = 16;
  ExpectError(j, "\"torch_dtype\" must be a string");
}

TEST(ModelConfigTest, InconsistentSizesRejected) {
  json j = TinyJson();
  j["hidden_size"] = 0;
  ExpectError(j, "\"hidden_size\" must be positive");
  j = TinyJson();
  j["vision_config"]["num_heads"] = -4;
  ExpectError(j, "\"vision_config.num_heads\" must be positive");
  j = TinyJson();
  j["multi_query_group_num"] = 3;
  ExpectError(j, "multi_query_group_num");
  j = TinyJson();
  j["kv_channels"] = 18;
  ExpectError(j, "kv_channels");
  j = TinyJson();
  j["vision_config"]["image_size"] = 120;
  ExpectError(j, "patch_size");
  j = TinyJson();
  j["vision_config"]["image_size"] = 126;  // grid 9: odd
  j["vision_config"]["num_positions"] = 82;
  ExpectError(j, "even");
  j = TinyJson();
  j["vision_config"]["num_positions"] = 64;
  ExpectError(j, "num_positions");
  j = TinyJson();
  j["vision_config"]["num_heads"] = 5;
  ExpectError(j, "num_heads");
  j = TinyJson();
  j["boi_token_id"] = 1024;
  ExpectError(j, "boi_token_id");
  j = TinyJson();
  j["layernorm_epsilon"] = 0;
  ExpectError(j, "layernorm_epsilon");
}

TEST(ModelConfigTest, MalformedJsonAndMissingFile) {
  auto c = ParseModelConfig("{\"hidden_size\": ", "x/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("x/config.json"));
  EXPECT_FALSE(ParseModelConfig("[]").ok());
  auto m = LoadModelConfig("/nonexistent-dir");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("/nonexistent-dir/config.json"));
}

// The full-size GLM-4V-9B config values (from DESIGN.md) pass validation with the real sizes.
TEST(ModelConfigTest, FullSizeShapeValidates) {
  json j = TinyJson();
  j["hidden_size"] = 4096;
  j["num_layers"] = 40;
  j["num_attention_heads"] = 32;
  j["kv_channels"] = 128;
  j["ffn_hidden_size"] = 13696;
  j["padded_vocab_size"] = 151552;
  j["eos_token_id"] = json::array({151329, 151336, 151338});
  j["pad_token_id"] = 151329;
  j["boi_token_id"] = 151339;
  j["eoi_token_id"] = 151340;
  j["vision_config"] = {
      {"image_size", 1120},         {"patch_size", 14},        {"in_channels", 3},
      {"hidden_size", 1792},        {"num_hidden_layers", 63}, {"num_heads", 16},
      {"intermediate_size", 15360}, {"layer_norm_eps", 1e-6},  {"num_positions", 6401},
      {"scaling_factor", 8},        {"hidden_act", "gelu"}};
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->qkv_size(), 4608);
  EXPECT_EQ(c->vision.feature_rows(), 1602);
  EXPECT_EQ(c->vision.head_dim(), 112);
}

}  // namespace
}  // namespace glm4v
