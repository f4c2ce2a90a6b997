#include "model/testing/random_checkpoint.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/dtype.h"
#include "nlohmann/json.hpp"

namespace glm4v {
namespace testing {

using json = nlohmann::json;

absl::StatusOr<WeightMap> RandomGlm4vWeights(const std::string& config_json, uint32_t seed) {
  json c = json::parse(config_json, nullptr, false);
  if (c.is_discarded()) return absl::InvalidArgumentError("bad config json");
  const json& v = c["vision_config"];
  const int64_t h = c["hidden_size"], vocab = c["padded_vocab_size"], layers = c["num_layers"];
  const int64_t heads = c["num_attention_heads"], groups = c["multi_query_group_num"];
  const int64_t kv = c["kv_channels"], ffn = c["ffn_hidden_size"];
  const int64_t vh = v["hidden_size"], vl = v["num_hidden_layers"], vi = v["intermediate_size"];
  const int64_t p = v["patch_size"], in_c = v["in_channels"], image = v["image_size"];
  const int64_t grid = image / p, qkv = heads * kv + 2 * groups * kv;

  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  WeightMap w;
  // Values are rounded to bf16 so the doubles equal what the checkpoint stores.
  auto add = [&](const std::string& name, Shape shape, double scale, double offset = 0.0) {
    NamedWeight nw;
    nw.shape = shape;
    nw.values.resize(NumElements(shape));
    for (double& x : nw.values) {
      x = BF16ToF32(F32ToBF16(static_cast<float>(offset + scale * normal(rng))));
    }
    w[name] = std::move(nw);
  };
  auto lin = [&](const std::string& name, int64_t out, int64_t in) {
    add(name, {out, in}, 1.0 / std::sqrt(static_cast<double>(in)));
  };
  const std::string t = "transformer.";
  add(t + "embedding.word_embeddings.weight", {vocab, h}, 1.0);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string q = absl::StrCat(t, "encoder.layers.", l, ".");
    add(q + "input_layernorm.weight", {h}, 0.2, 1.0);
    lin(q + "self_attention.query_key_value.weight", qkv, h);
    add(q + "self_attention.query_key_value.bias", {qkv}, 0.1);
    lin(q + "self_attention.dense.weight", h, heads * kv);
    add(q + "post_attention_layernorm.weight", {h}, 0.2, 1.0);
    lin(q + "mlp.dense_h_to_4h.weight", 2 * ffn, h);
    lin(q + "mlp.dense_4h_to_h.weight", h, ffn);
  }
  add(t + "encoder.final_layernorm.weight", {h}, 0.2, 1.0);
  lin(t + "output_layer.weight", vocab, h);
  const std::string vp = t + "vision.";
  add(vp + "patch_embedding.proj.weight", {vh, in_c, p, p}, 1.0 / std::sqrt(in_c * p * p * 1.0));
  add(vp + "patch_embedding.proj.bias", {vh}, 0.1);
  add(vp + "patch_embedding.cls_embedding", {1, vh}, 1.0);
  add(vp + "patch_embedding.position_embedding.weight", {grid * grid + 1, vh}, 0.5);
  for (int64_t l = 0; l < vl; ++l) {
    const std::string q = absl::StrCat(vp, "transformer.layers.", l, ".");
    add(q + "input_layernorm.weight", {vh}, 0.2, 1.0);
    add(q + "input_layernorm.bias", {vh}, 0.1);
    lin(q + "attention.query_key_value.weight", 3 * vh, vh);
    add(q + "attention.query_key_value.bias", {3 * vh}, 0.1);
    lin(q + "attention.dense.weight", vh, vh);
    add(q + "attention.dense.bias", {vh}, 0.1);
    lin(q + "mlp.fc1.weight", vi, vh);
    add(q + "mlp.fc1.bias", {vi}, 0.1);
    lin(q + "mlp.fc2.weight", vh, vi);
    add(q + "mlp.fc2.bias", {vh}, 0.1);
    add(q + "post_attention_layernorm.weight", {vh}, 0.2, 1.0);
    add(q + "post_attention_layernorm.bias", {vh}, 0.1);
  }
  add(vp + "conv.weight", {h, vh, 2, 2}, 1.0 / std::sqrt(vh * 4.0));
  add(vp + "conv.bias", {h}, 0.1);
  lin(vp + "linear_proj.linear_proj.weight", h, h);
  add(vp + "linear_proj.norm1.weight", {h}, 0.2, 1.0);
  add(vp + "linear_proj.norm1.bias", {h}, 0.1);
  lin(vp + "linear_proj.dense_h_to_4h.weight", ffn, h);
  lin(vp + "linear_proj.gate_proj.weight", ffn, h);
  lin(vp + "linear_proj.dense_4h_to_h.weight", h, ffn);
  add(vp + "boi", {1, 1, h}, 1.0);
  add(vp + "eoi", {1, 1, h}, 1.0);
  return w;
}

absl::Status WriteSafetensorsBf16(const std::string& path, const WeightMap& weights) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& [name, w] : weights) {
    const size_t bytes = w.values.size() * 2;
    header[name] = {{"dtype", "BF16"}, {"shape", w.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  const uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), text.size());
  for (const auto& [name, w] : weights) {
    for (double x : w.values) {
      const uint16_t b = F32ToBF16(static_cast<float>(x));
      const char le[2] = {static_cast<char>(b & 0xff), static_cast<char>(b >> 8)};
      out.write(le, 2);
    }
  }
  return out.good() ? absl::OkStatus() : absl::InternalError(absl::StrCat("write failed: ", path));
}

absl::Status WriteCheckpoint(const std::string& dir, const std::string& config_json,
                             const WeightMap& weights) {
  mkdir(dir.c_str(), 0755);
  const std::string shards[2] = {"model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors"};
  WeightMap parts[2];
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  for (const auto& [name, w] : weights) {
    const int shard = absl::StrContains(name, ".vision.") ? 1 : 0;
    parts[shard][name] = w;
    index["weight_map"][name] = shards[shard];
  }
  for (int s = 0; s < 2; ++s) {
    absl::Status st = WriteSafetensorsBf16(dir + "/" + shards[s], parts[s]);
    if (!st.ok()) return st;
  }
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump(1);
  std::ofstream(dir + "/config.json") << config_json;
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace glm4v
