#include "common/model_config.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace glm4v {
namespace {

using json = nlohmann::json;

// Reads typed fields out of one JSON object, naming "<source>: <prefix><key>" in every error.
class FieldReader {
 public:
  FieldReader(const json& obj, std::string source, std::string prefix)
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  absl::Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": field \"", prefix_, key, "\" ", what));
  }

  // Required fields: absent -> error. Optional ones leave *out untouched when absent.
  absl::Status Int(const std::string& key, int* out, bool required = true) const {
    const json* v = Find(key);
    if (v == nullptr) return required ? Error(key, "is missing") : absl::OkStatus();
    return ToInt(key, *v, out);
  }

  absl::Status Double(const std::string& key, double* out, bool required = true) const {
    const json* v = Find(key);
    if (v == nullptr) return required ? Error(key, "is missing") : absl::OkStatus();
    if (!v->is_number()) return Error(key, "must be a number");
    *out = v->get<double>();
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& key, bool* out, bool required = true) const {
    const json* v = Find(key);
    if (v == nullptr) return required ? Error(key, "is missing") : absl::OkStatus();
    if (!v->is_boolean()) return Error(key, "must be a boolean");
    *out = v->get<bool>();
    return absl::OkStatus();
  }

  absl::Status String(const std::string& key, std::string* out, bool required = true) const {
    const json* v = Find(key);
    if (v == nullptr) return required ? Error(key, "is missing") : absl::OkStatus();
    if (!v->is_string()) return Error(key, "must be a string");
    *out = v->get<std::string>();
    return absl::OkStatus();
  }

  // An int or a non-empty list of ints (HF allows both for eos_token_id).
  absl::Status IntOrIntList(const std::string& key, std::vector<int>* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Error(key, "is missing");
    std::vector<int> ids;
    if (v->is_array()) {
      if (v->empty()) return Error(key, "must not be an empty list");
      for (const json& e : *v) {
        int id;
        RETURN_IF_ERROR(ToInt(key, e, &id));
        ids.push_back(id);
      }
    } else {
      int id;
      RETURN_IF_ERROR(ToInt(key, *v, &id));
      ids.push_back(id);
    }
    *out = std::move(ids);
    return absl::OkStatus();
  }

  const json* Find(const std::string& key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

 private:
  absl::Status ToInt(const std::string& key, const json& v, int* out) const {
    if (!v.is_number_integer()) return Error(key, "must be an integer");
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
        return Error(key, "is out of range");
      }
    } else {
      int64_t x = v.get<int64_t>();
      if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) {
        return Error(key, "is out of range");
      }
    }
    *out = v.get<int>();
    return absl::OkStatus();
  }

  const json& obj_;
  std::string source_;
  std::string prefix_;
};

absl::Status Check(bool ok, const std::string& source, const std::string& what) {
  return ok ? absl::OkStatus()
            : absl::InvalidArgumentError(absl::StrCat(source, ": invalid config: ", what));
}

absl::Status ParseVision(const json& obj, const std::string& source, VisionConfig* v) {
  FieldReader r(obj, source, "vision_config.");
  RETURN_IF_ERROR(r.Int("image_size", &v->image_size));
  RETURN_IF_ERROR(r.Int("patch_size", &v->patch_size));
  RETURN_IF_ERROR(r.Int("in_channels", &v->in_channels));
  RETURN_IF_ERROR(r.Int("hidden_size", &v->hidden_size));
  RETURN_IF_ERROR(r.Int("num_hidden_layers", &v->num_hidden_layers));
  RETURN_IF_ERROR(r.Int("num_heads", &v->num_heads));
  RETURN_IF_ERROR(r.Int("intermediate_size", &v->intermediate_size));
  RETURN_IF_ERROR(r.Double("layer_norm_eps", &v->layer_norm_eps));
  RETURN_IF_ERROR(r.Int("num_positions", &v->num_positions));
  RETURN_IF_ERROR(r.Double("scaling_factor", &v->scaling_factor));
  RETURN_IF_ERROR(r.String("hidden_act", &v->hidden_act, /*required=*/false));

  const std::pair<const char*, int> sizes[] = {{"image_size", v->image_size},
                                               {"patch_size", v->patch_size},
                                               {"in_channels", v->in_channels},
                                               {"hidden_size", v->hidden_size},
                                               {"num_hidden_layers", v->num_hidden_layers},
                                               {"num_heads", v->num_heads},
                                               {"intermediate_size", v->intermediate_size},
                                               {"num_positions", v->num_positions}};
  for (const auto& [name, value] : sizes) {
    if (value <= 0) return r.Error(name, absl::StrCat("must be positive, got ", value));
  }
  if (!(v->layer_norm_eps > 0)) return r.Error("layer_norm_eps", "must be positive");
  if (!(v->scaling_factor > 0)) return r.Error("scaling_factor", "must be positive");
  if (v->hidden_act != "gelu") {
    return r.Error("hidden_act", absl::StrCat("must be \"gelu\", got \"", v->hidden_act, "\""));
  }
  RETURN_IF_ERROR(Check(v->image_size % v->patch_size == 0, source,
                        absl::StrCat("vision_config.image_size ", v->image_size,
                                     " is not a multiple of patch_size ", v->patch_size)));
  RETURN_IF_ERROR(Check(v->grid() % 2 == 0, source,
                        absl::StrCat("vision patch grid ", v->grid(),
                                     " must be even for the 2x2 downsampling conv")));
  RETURN_IF_ERROR(Check(v->num_positions == v->num_patches() + 1, source,
                        absl::StrCat("vision_config.num_positions ", v->num_positions,
                                     " != grid^2 + 1 = ", v->num_patches() + 1)));
  RETURN_IF_ERROR(Check(v->hidden_size % v->num_heads == 0, source,
                        absl::StrCat("vision_config.hidden_size ", v->hidden_size,
                                     " is not divisible by num_heads ", v->num_heads)));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  ModelConfig c;
  FieldReader r(root, source, "");
  RETURN_IF_ERROR(r.Int("hidden_size", &c.hidden_size));
  RETURN_IF_ERROR(r.Int("num_layers", &c.num_layers));
  RETURN_IF_ERROR(r.Int("num_attention_heads", &c.num_attention_heads));
  RETURN_IF_ERROR(r.Int("multi_query_group_num", &c.multi_query_group_num));
  RETURN_IF_ERROR(r.Int("kv_channels", &c.kv_channels));
  RETURN_IF_ERROR(r.Int("ffn_hidden_size", &c.ffn_hidden_size));
  RETURN_IF_ERROR(r.Int("padded_vocab_size", &c.padded_vocab_size));
  RETURN_IF_ERROR(r.Double("layernorm_epsilon", &c.layernorm_epsilon));
  c.rope_ratio = 1.0;  // THUDM's code defaults it when the key is absent
  RETURN_IF_ERROR(r.Double("rope_ratio", &c.rope_ratio, /*required=*/false));
  RETURN_IF_ERROR(r.Int("seq_length", &c.seq_length));
  // These change the weight layout or the math, so they must be stated, not defaulted.
  RETURN_IF_ERROR(r.Bool("add_qkv_bias", &c.add_qkv_bias));
  RETURN_IF_ERROR(r.Bool("add_bias_linear", &c.add_bias_linear));
  RETURN_IF_ERROR(r.Bool("rmsnorm", &c.rmsnorm));
  RETURN_IF_ERROR(r.Bool("post_layer_norm", &c.post_layer_norm));
  RETURN_IF_ERROR(r.Bool("original_rope", &c.original_rope));
  c.tie_word_embeddings = false;  // HF default
  RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_word_embeddings, /*required=*/false));
  RETURN_IF_ERROR(r.IntOrIntList("eos_token_id", &c.eos_token_ids));
  c.pad_token_id = c.eos_token_ids.front();
  RETURN_IF_ERROR(r.Int("pad_token_id", &c.pad_token_id, /*required=*/false));
  // GLM-4V states its image ids and vision tower; a text-only model has neither.
  const json* vision = r.Find("vision_config");
  c.has_vision = vision != nullptr;
  if (c.has_vision) {
    RETURN_IF_ERROR(r.Int("boi_token_id", &c.boi_token_id));
    RETURN_IF_ERROR(r.Int("eoi_token_id", &c.eoi_token_id));
  } else {
    c.boi_token_id = -1;
    c.eoi_token_id = -1;
  }
  RETURN_IF_ERROR(r.String("torch_dtype", &c.torch_dtype, /*required=*/false));

  const std::pair<const char*, int> sizes[] = {{"hidden_size", c.hidden_size},
                                               {"num_layers", c.num_layers},
                                               {"num_attention_heads", c.num_attention_heads},
                                               {"multi_query_group_num", c.multi_query_group_num},
                                               {"kv_channels", c.kv_channels},
                                               {"ffn_hidden_size", c.ffn_hidden_size},
                                               {"padded_vocab_size", c.padded_vocab_size},
                                               {"seq_length", c.seq_length}};
  for (const auto& [name, value] : sizes) {
    if (value <= 0) return r.Error(name, absl::StrCat("must be positive, got ", value));
  }
  if (!(c.layernorm_epsilon > 0)) return r.Error("layernorm_epsilon", "must be positive");
  if (!(c.rope_ratio > 0)) return r.Error("rope_ratio", "must be positive");
  RETURN_IF_ERROR(
      Check(c.num_attention_heads % c.multi_query_group_num == 0, source,
            absl::StrCat("num_attention_heads ", c.num_attention_heads,
                         " is not divisible by multi_query_group_num ", c.multi_query_group_num)));
  // Only the first kv_channels/2 dims rotate, as adjacent pairs: that half must itself be even.
  RETURN_IF_ERROR(Check(c.kv_channels % 4 == 0, source,
                        absl::StrCat("kv_channels ", c.kv_channels,
                                     " must be a multiple of 4 (rotary half made of pairs)")));
  auto check_token = [&](const char* name, int id) {
    return Check(
        id >= 0 && id < c.padded_vocab_size, source,
        absl::StrCat(name, " ", id, " outside [0, padded_vocab_size ", c.padded_vocab_size, ")"));
  };
  for (int id : c.eos_token_ids) RETURN_IF_ERROR(check_token("eos_token_id", id));
  RETURN_IF_ERROR(check_token("pad_token_id", c.pad_token_id));
  if (!c.has_vision) return c;
  RETURN_IF_ERROR(check_token("boi_token_id", c.boi_token_id));
  RETURN_IF_ERROR(check_token("eoi_token_id", c.eoi_token_id));
  if (!vision->is_object()) return r.Error("vision_config", "must be an object");
  RETURN_IF_ERROR(ParseVision(*vision, source, &c.vision));
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseModelConfig(ss.str(), path);
}

}  // namespace glm4v
