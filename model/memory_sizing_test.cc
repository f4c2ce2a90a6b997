// The sizing code against what the loaders really allocate: decoder weights for every storage
// format at TP = 1, 2 and 4 (each rank), with and without a quantized LM head, and the vision
// tower + projector; the KV bytes per token against the cache's own block arithmetic; and the
// GLM-4V-9B figures docs/DEPLOYMENT.md quotes.
#include "model/memory_sizing.h"

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/decoder_weights.h"
#include "model/kv_cache.h"
#include "model/testing/glm4v_9b_config.h"
#include "model/vision_weights.h"
#include "model/weight_options.h"

namespace glm4v {
namespace {

constexpr char kModel[] = "tests/data/tiny-glm4v/model";

WeightStorage StorageFor(const WeightLoadOptions& options, const Backend& backend,
                         const Checkpoint& checkpoint) {
  auto info = checkpoint.Info("transformer.embedding.word_embeddings.weight");
  EXPECT_TRUE(info.ok());
  auto dtypes = ResolveWeightDTypes(options, backend, info->dtype);
  EXPECT_TRUE(dtypes.ok());
  WeightStorage s;
  s.linear = options.quantization;
  s.matrix = dtypes->matrix;
  s.activation = dtypes->activation;
  s.quantize_output_layer = options.quantize_output_layer;
  return s;
}

TEST(MemorySizingTest, WeightBytesEqualWhatTheLoadersHold) {
  Backend* backend = GetBackend("cpu").value();
  auto checkpoint = Checkpoint::Open(kModel);
  auto config = LoadModelConfig(kModel);
  ASSERT_TRUE(checkpoint.ok() && config.ok());
  int checked = 0;
  for (const char* dtype : {"auto", "bf16", "int8", "int4", "fp8"}) {
    for (const bool head : {false, true}) {
      WeightLoadOptions options;
      ASSERT_TRUE(ParseWeightDTypeFlag("weight_dtype", dtype, &options).ok());
      options.quantize_output_layer = head;
      const WeightStorage storage = StorageFor(options, *backend, *checkpoint);
      for (const int tp : {1, 2, 4}) {
        for (int rank = 0; rank < tp; ++rank) {
          auto shard = PlanShard(*config, rank, tp);
          if (!shard.ok()) continue;  // the tiny model may not split 4 ways
          auto weights = LoadDecoderWeights(*checkpoint, *config, backend, *shard, options);
          ASSERT_TRUE(weights.ok()) << weights.status();
          auto want = DecoderWeightBytes(*config, rank, tp, storage);
          ASSERT_TRUE(want.ok()) << want.status();
          EXPECT_EQ(*want, weights->HeldBytes())
              << dtype << " head " << head << " tp " << tp << " rank " << rank;
          ++checked;
        }
      }
      auto vision = LoadVisionWeights(*checkpoint, *config, backend, options);
      ASSERT_TRUE(vision.ok()) << vision.status();
      EXPECT_EQ(VisionWeightBytes(*config, storage), vision->HeldBytes()) << dtype;
    }
  }
  EXPECT_GE(checked, 30);
}

TEST(MemorySizingTest, KvBytesPerTokenMatchTheCacheBlocks) {
  auto config = ParseModelConfig(testing::Glm4v9bConfigJson(), "glm-4v-9b");
  ASSERT_TRUE(config.ok());
  for (const int tp : {1, 2, 4, 8}) {
    auto shard = PlanShard(*config, 0, tp);
    ASSERT_TRUE(shard.ok());
    KvCacheShape kv;
    kv.num_layers = config->num_layers;
    kv.block_size = 16;
    kv.num_kv_heads = shard->num_kv_heads;
    kv.head_dim = config->kv_channels;
    auto per_token = KvBytesPerTokenPerRank(*config, tp, DType::kBF16);
    ASSERT_TRUE(per_token.ok());
    EXPECT_EQ(*per_token * 16, kv.bytes_per_block(2)) << tp;
  }
  // GLM-4V-9B: 40 KiB per token at TP 1, 20 KiB from TP 2 on (2 KV groups, then replicas).
  EXPECT_EQ(*KvBytesPerTokenPerRank(*config, 1, DType::kBF16), 40960);
  EXPECT_EQ(*KvBytesPerTokenPerRank(*config, 8, DType::kBF16), 20480);
  EXPECT_FALSE(KvBytesPerTokenPerRank(*config, 3, DType::kBF16).ok());
}

TEST(MemorySizingTest, Glm4v9bFigures) {
  auto config = ParseModelConfig(testing::Glm4v9bConfigJson(), "glm-4v-9b");
  ASSERT_TRUE(config.ok());
  WeightStorage bf16;
  const double gib = 1024.0 * 1024 * 1024;
  // The decoder's 9.40e9 parameters in bf16 (DEPLOYMENT.md: 17.5 GiB), the vision tower and
  // projector's 4.5e9 (8.4 GiB).
  EXPECT_NEAR(*DecoderWeightBytes(*config, 0, 1, bf16) / gib, 17.51, 0.01);
  EXPECT_NEAR(VisionWeightBytes(*config, bf16) / gib, 8.39, 0.01);
  WeightStorage int8 = bf16;
  int8.linear = WeightFormat::kInt8;
  WeightStorage int4 = bf16;
  int4.linear = WeightFormat::kInt4;
  // int8 about halves the Linear bytes; embeddings and the LM head stay bf16 (2.3 GiB).
  EXPECT_NEAR(*DecoderWeightBytes(*config, 0, 1, int8) / gib, 9.92, 0.02);
  EXPECT_LT(*DecoderWeightBytes(*config, 0, 1, int4), *DecoderWeightBytes(*config, 0, 1, int8));
  EXPECT_EQ(FeatureBytesPerImage(*config, DType::kBF16), 1602 * 4096 * 2);

  // One 24 GB GPU, int8 decoder and vision on it: fits with KV to spare.
  GpuPlanRequest r;
  r.gpu_bytes = int64_t{24} * 1000 * 1000 * 1000;
  r.decoder = int8;
  r.vision_on_gpu = true;
  r.vision = int8;
  r.feature_cache_entries = 16;
  r.max_batched_tokens = 2048;
  r.max_seqs = 32;
  auto plan = PlanGpu(*config, r);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->fits());
  EXPECT_GT(plan->kv_tokens, 8192 * 4);
  // bf16 does not fit there.
  r.decoder = bf16;
  r.vision = bf16;
  plan = PlanGpu(*config, r);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->fits());
}

// GLM-4-9B-chat-1M (the same decoder): 40 KiB of bf16 KV per token, so a 1M-token sequence
// needs 40 GiB of KV. TP 2 holds one KV group per rank; TP 4/8 replicate the groups unless
// decode context parallelism splits their tokens, which multiplies the context by dcp.
TEST(MemorySizingTest, DecodeContextParallelismMultipliesTheContextPerGroup) {
  auto config = ParseModelConfig(testing::Glm4v9bConfigJson(), "glm-4v-9b");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(*KvBytesPerTokenPerRank(*config, 1, DType::kBF16), 40 * 1024);
  EXPECT_EQ(*KvBytesPerTokenPerRank(*config, 4, DType::kBF16), 20 * 1024);
  GpuPlanRequest r;
  r.gpu_bytes = int64_t{80} * 1000 * 1000 * 1000;
  r.tp_size = 8;
  auto replicated = PlanGpu(*config, r);
  ASSERT_TRUE(replicated.ok());
  r.decode_context_parallel = 4;
  auto split = PlanGpu(*config, r);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_TRUE(split->fits());
  // Slightly more activation scratch, four times the tokens.
  EXPECT_GT(split->activations, replicated->activations);
  EXPECT_NEAR(static_cast<double>(split->kv_tokens) / replicated->kv_tokens, 4.0, 0.01);
  EXPECT_GT(split->kv_tokens, 1 << 20);  // a whole 1M-token sequence per TP-8 group
  r.decode_context_parallel = 3;
  EXPECT_EQ(PlanGpu(*config, r).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
