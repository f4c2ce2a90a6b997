#include "model/testing/glm4v_9b_config.h"

#include "nlohmann/json.hpp"

namespace glm4v {
namespace testing {

std::string Glm4v9bConfigJson(int decoder_layers, int vision_layers) {
  nlohmann::json config = {
      {"architectures", {"ChatGLMForConditionalGeneration"}},
      {"model_type", "chatglm"},
      {"add_bias_linear", false},
      {"add_qkv_bias", true},
      {"ffn_hidden_size", 13696},
      {"hidden_size", 4096},
      {"kv_channels", 128},
      {"layernorm_epsilon", 1.5625e-07},
      {"multi_query_attention", true},
      {"multi_query_group_num", 2},
      {"num_attention_heads", 32},
      {"num_layers", 40},
      {"original_rope", true},
      {"padded_vocab_size", 151552},
      {"post_layer_norm", true},
      {"rmsnorm", true},
      {"rope_ratio", 1},
      {"seq_length", 8192},
      {"torch_dtype", "bfloat16"},
      {"tie_word_embeddings", false},
      {"eos_token_id", {151329, 151336, 151338}},
      {"pad_token_id", 151329},
      {"boi_token_id", 151339},
      {"eoi_token_id", 151340},
      {"vision_config",
       {{"dropout_prob", 0.0},
        {"hidden_act", "gelu"},
        {"in_channels", 3},
        {"num_hidden_layers", 63},
        {"hidden_size", 1792},
        {"patch_size", 14},
        {"num_heads", 16},
        {"intermediate_size", 15360},
        {"layer_norm_eps", 1e-06},
        {"num_positions", 6401},
        {"image_size", 1120},
        {"scaling_factor", 8}}}};
  if (decoder_layers >= 0) config["num_layers"] = decoder_layers;
  if (vision_layers >= 0) config["vision_config"]["num_hidden_layers"] = vision_layers;
  return config.dump(2);
}

}  // namespace testing
}  // namespace glm4v
