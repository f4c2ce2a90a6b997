#include "model/testing/streaming_checkpoint.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/counter_rng.h"
#include "common/dtype.h"
#include "common/glm4v_weight_names.h"
#include "common/model_config.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace glm4v {
namespace testing {
namespace {

using json = nlohmann::json;

constexpr int64_t kChunkValues = int64_t{1} << 19;  // 1 MiB of bf16

// An approximately normal value (Irwin-Hall sum of four 16-bit uniforms, unit variance) for
// element `i` of the stream `key`: cheap enough to fill tens of GiB.
inline float NormalAt(uint64_t key, uint64_t i) {
  const uint64_t r = Mix64(key + (i + 1) * 0x9e3779b97f4a7c15ULL);
  const double sum = static_cast<double>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                         ((r >> 32) & 0xffff) + (r >> 48)) /
                     65536.0;
  return static_cast<float>((sum - 2.0) * 1.7320508075688772);  // / sqrt(4 / 12)
}

struct Shard {
  std::vector<const WeightSpec*> tensors;
  int64_t bytes = 0;
};

absl::Status WriteShard(const std::string& path, const Shard& shard, uint32_t seed,
                        const std::vector<WeightSpec>& all) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  int64_t offset = 0;
  for (const WeightSpec* w : shard.tensors) {
    const int64_t bytes = NumElements(w->shape) * 2;
    header[w->name] = {{"dtype", "BF16"}, {"shape", w->shape},
                       {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path));
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  bool ok = std::fwrite(len, 1, 8, out) == 8 &&
            std::fwrite(text.data(), 1, text.size(), out) == text.size();
  std::vector<uint16_t> chunk(kChunkValues);
  for (const WeightSpec* w : shard.tensors) {
    const WeightInit init = InitFor(w->name, w->shape);
    const uint64_t key = Mix64(seed) ^ Mix64(static_cast<uint64_t>(w - all.data()) + 1);
    const int64_t n = NumElements(w->shape);
    for (int64_t begin = 0; ok && begin < n; begin += kChunkValues) {
      const int64_t len_values = std::min(kChunkValues, n - begin);
      for (int64_t i = 0; i < len_values; ++i) {
        const float v = static_cast<float>(init.offset + init.scale * NormalAt(key, begin + i));
        chunk[i] = F32ToBF16(v);  // little-endian hosts: the bytes safetensors stores
      }
      ok = std::fwrite(chunk.data(), 2, len_values, out) == static_cast<size_t>(len_values);
    }
  }
  ok = std::fclose(out) == 0 && ok;
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("write failed: ", path));
}

}  // namespace

WeightInit InitFor(const std::string& name, const Shape& shape) {
  const bool norm = absl::StrContains(name, "layernorm.weight") ||
                    absl::StrContains(name, "norm1.weight");
  if (norm) return {0.2, 1.0};
  if (absl::EndsWith(name, ".bias")) return {0.1, 0.0};
  if (absl::StrContains(name, "position_embedding")) return {0.5, 0.0};
  if (absl::StrContains(name, "word_embeddings") || absl::EndsWith(name, "cls_embedding") ||
      absl::EndsWith(name, ".boi") || absl::EndsWith(name, ".eoi")) {
    return {1.0, 0.0};
  }
  // Linear and conv weights: [out, in, (kh, kw)] -> 1 / sqrt(fan_in).
  int64_t fan_in = 1;
  for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
  return {1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1))), 0.0};
}

absl::Status WriteRandomCheckpoint(const std::string& dir, const std::string& config_json,
                                   const StreamingCheckpointOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(config_json));
  const std::vector<WeightSpec> specs = Glm4vWeightSpecs(config);
  std::vector<Shard> shards(1);
  for (const WeightSpec& w : specs) {
    const int64_t bytes = NumElements(w.shape) * 2;
    if (!shards.back().tensors.empty() && shards.back().bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
    }
    shards.back().tensors.push_back(&w);
    shards.back().bytes += bytes;
  }
  mkdir(dir.c_str(), 0755);
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  int64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name =
        absl::StrFormat("model-%05d-of-%05d.safetensors", s + 1, shards.size());
    RETURN_IF_ERROR(WriteShard(dir + "/" + name, shards[s], options.seed, specs));
    for (const WeightSpec* w : shards[s].tensors) index["weight_map"][w->name] = name;
    total += shards[s].bytes;
  }
  index["metadata"]["total_size"] = total;
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump(1);
  std::ofstream config_out(dir + "/config.json");
  config_out << config_json;
  return config_out.good() ? absl::OkStatus()
                           : absl::InternalError(absl::StrCat("cannot write ", dir, "/config.json"));
}

}  // namespace testing
}  // namespace glm4v
