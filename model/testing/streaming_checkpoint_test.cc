#include "model/testing/streaming_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/glm4v_weight_names.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "kernels/backends.h"
#include "model/decoder.h"
#include "nlohmann/json.hpp"

namespace glm4v::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TinyConfig() { return ReadFile("tests/data/tiny-glm4v/model/config.json"); }

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return std::string(base != nullptr ? base : "/tmp") + "/" + name;
}

TEST(StreamingCheckpointTest, WritesEveryTensorInShardsTheLoaderReads) {
  const std::string dir = TempDir("sharded");
  StreamingCheckpointOptions options;
  options.max_shard_bytes = 64 << 10;  // many shards
  ASSERT_TRUE(WriteRandomCheckpoint(dir, TinyConfig(), options).ok());
  absl::StatusOr<ModelConfig> config = ParseModelConfig(TinyConfig());
  ASSERT_TRUE(config.ok());
  absl::StatusOr<Checkpoint> checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  int64_t total = 0;
  for (const WeightSpec& spec : Glm4vWeightSpecs(*config)) {
    absl::StatusOr<TensorInfo> info = checkpoint->Info(spec.name);
    ASSERT_TRUE(info.ok()) << spec.name;
    EXPECT_EQ(info->dtype, DType::kBF16) << spec.name;
    EXPECT_EQ(info->shape, spec.shape) << spec.name;
    total += NumElements(spec.shape) * 2;
  }
  EXPECT_EQ(checkpoint->TensorNames().size(), Glm4vWeightSpecs(*config).size());
  const nlohmann::json index =
      nlohmann::json::parse(ReadFile(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), total);
  EXPECT_GT(index["weight_map"]["transformer.vision.boi"].get<std::string>().size(), 0u);
  EXPECT_NE(index["weight_map"]["transformer.encoder.layers.0.input_layernorm.weight"],
            index["weight_map"]["transformer.vision.conv.weight"]);  // several shards

  // The decoder loads from it.
  absl::StatusOr<Backend*> cpu = GetBackend("cpu");
  ASSERT_TRUE(cpu.ok());
  absl::StatusOr<std::unique_ptr<Decoder>> decoder = Decoder::Load(*checkpoint, *config, *cpu);
  EXPECT_TRUE(decoder.ok()) << decoder.status();
}

TEST(StreamingCheckpointTest, ValuesFollowTheInitAndTheSeed) {
  const std::string a = TempDir("seed1"), b = TempDir("seed1-again"), c = TempDir("seed2");
  ASSERT_TRUE(WriteRandomCheckpoint(a, TinyConfig()).ok());
  ASSERT_TRUE(WriteRandomCheckpoint(b, TinyConfig()).ok());
  StreamingCheckpointOptions other;
  other.seed = 2;
  ASSERT_TRUE(WriteRandomCheckpoint(c, TinyConfig(), other).ok());
  const std::string shard = "/model-00001-of-00001.safetensors";
  EXPECT_EQ(ReadFile(a + shard), ReadFile(b + shard));
  EXPECT_NE(ReadFile(a + shard), ReadFile(c + shard));

  absl::StatusOr<Checkpoint> checkpoint = Checkpoint::Open(a);
  ASSERT_TRUE(checkpoint.ok());
  auto moments = [&](const std::string& name, const Shape& shape) {
    absl::StatusOr<Tensor> t = checkpoint->GetF32(name, shape);
    EXPECT_TRUE(t.ok()) << name;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < t->numel(); ++i) sum += t->data<float>()[i];
    const double mean = sum / t->numel();
    for (int64_t i = 0; i < t->numel(); ++i) {
      sq += (t->data<float>()[i] - mean) * (t->data<float>()[i] - mean);
    }
    return std::make_pair(mean, std::sqrt(sq / t->numel()));
  };
  // Linear [2 * 96, 64]: N(0, 1/sqrt(64)); a norm weight: 1 + N(0, 0.2); embeddings N(0, 1).
  auto [lin_mean, lin_std] =
      moments("transformer.encoder.layers.0.mlp.dense_h_to_4h.weight", {192, 64});
  EXPECT_NEAR(lin_mean, 0.0, 0.01);
  EXPECT_NEAR(lin_std, 0.125, 0.01);
  auto [norm_mean, norm_std] = moments("transformer.encoder.layers.1.input_layernorm.weight", {64});
  EXPECT_NEAR(norm_mean, 1.0, 0.08);
  EXPECT_NEAR(norm_std, 0.2, 0.06);
  auto [emb_mean, emb_std] = moments("transformer.embedding.word_embeddings.weight", {1024, 64});
  EXPECT_NEAR(emb_mean, 0.0, 0.02);
  EXPECT_NEAR(emb_std, 1.0, 0.03);
}

TEST(StreamingCheckpointTest, RejectsAConfigItCannotParse) {
  EXPECT_FALSE(WriteRandomCheckpoint(TempDir("bad"), "{not json").ok());
}

}  // namespace
}  // namespace glm4v::testing
