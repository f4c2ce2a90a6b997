// GLM-4V config.json, parsed and validated. Every size the model code uses comes from here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glm4v {

struct VisionConfig {
  int image_size = 1120;
  int patch_size = 14;
  int in_channels = 3;
  int hidden_size = 1792;
  int num_hidden_layers = 63;
  int num_heads = 16;
  int intermediate_size = 15360;
  double layer_norm_eps = 1e-6;
  int num_positions = 6401;
  double scaling_factor = 8;
  std::string hidden_act = "gelu";

  int grid() const { return image_size / patch_size; }             // 80
  int num_patches() const { return grid() * grid(); }              // 6400
  int head_dim() const { return hidden_size / num_heads; }         // 112
  int merged_grid() const { return grid() / 2; }                   // 40 after the 2x2 conv
  int image_tokens() const { return merged_grid() * merged_grid(); }  // 1600
  int feature_rows() const { return image_tokens() + 2; }          // + boi + eoi = 1602
};

struct ModelConfig {
  int hidden_size = 4096;
  int num_layers = 40;
  int num_attention_heads = 32;
  int multi_query_group_num = 2;   // KV heads (grouped-query attention)
  int kv_channels = 128;           // head dim
  int ffn_hidden_size = 13696;
  int padded_vocab_size = 151552;
  double layernorm_epsilon = 1.5625e-7;
  double rope_ratio = 1.0;
  int seq_length = 8192;           // max context the model was trained for
  bool add_qkv_bias = true;
  bool add_bias_linear = false;
  bool rmsnorm = true;
  bool post_layer_norm = true;
  bool original_rope = true;
  bool tie_word_embeddings = false;
  std::vector<int> eos_token_ids = {151329, 151336, 151338};
  int pad_token_id = 151329;
  // Image ids and the vision tower: GLM-4V. A text-only checkpoint (GLM-4-9B-chat and -1M: no
  // vision_config in config.json) has has_vision false and both ids -1 (no prompt id matches).
  bool has_vision = true;
  int boi_token_id = 151339;
  int eoi_token_id = 151340;
  std::string torch_dtype = "bfloat16";
  VisionConfig vision;

  int head_dim() const { return kv_channels; }
  int q_size() const { return num_attention_heads * kv_channels; }
  int kv_size() const { return multi_query_group_num * kv_channels; }
  int qkv_size() const { return q_size() + 2 * kv_size(); }
  int heads_per_group() const { return num_attention_heads / multi_query_group_num; }
  int rotary_dim() const { return kv_channels / 2; }   // only the first half of each head rotates
  double rope_base() const { return 10000.0 * rope_ratio; }
};

// Parses config.json text; `source` names the file in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source = "config.json");
// Reads and parses <dir>/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace glm4v
