// The shard plan (which heads, KV groups, FFN and vocabulary rows a rank holds) and that a
// rank's weights are exactly its slices, read without converting the rest of the checkpoint.
#include "model/tensor_parallel.h"

#include <vector>

#include "common/safetensors.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/decoder_weights.h"

namespace glm4v {
namespace {

ModelConfig Glm4vLike(int heads, int groups) {
  ModelConfig c;
  c.num_attention_heads = heads;
  c.multi_query_group_num = groups;
  c.kv_channels = 128;
  c.hidden_size = heads * 128;
  c.ffn_hidden_size = 13696;
  c.padded_vocab_size = 151552;
  return c;
}

TEST(PlanShardTest, Glm4vKvGroupsSplitOrReplicated) {
  const ModelConfig c = Glm4vLike(32, 2);
  for (int tp : {1, 2, 4, 8}) {
    for (int r = 0; r < tp; ++r) {
      auto s = PlanShard(c, r, tp);
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ(s->num_heads, 32 / tp);
      EXPECT_EQ(s->first_head, r * 32 / tp);
      EXPECT_EQ(s->num_kv_heads, tp <= 2 ? 2 / tp : 1);
      // The groups the rank's heads use (query head h uses group h / 16).
      EXPECT_EQ(s->first_kv_head, s->first_head / 16);
      EXPECT_EQ((s->first_head + s->num_heads - 1) / 16,
                s->first_kv_head + s->num_kv_heads - 1);
      EXPECT_EQ(s->ffn * tp, 13696);
      EXPECT_EQ(s->first_ffn, r * s->ffn);
      EXPECT_EQ(s->vocab * tp, 151552);
      EXPECT_EQ(s->first_vocab, r * s->vocab);
    }
  }
}

TEST(PlanShardTest, ClearErrors) {
  EXPECT_EQ(PlanShard(Glm4vLike(32, 2), 0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);            // heads % 3
  auto groups = PlanShard(Glm4vLike(12, 4), 0, 6);          // 4 groups vs 6 ranks
  ASSERT_FALSE(groups.ok());
  EXPECT_NE(groups.status().message().find("KV groups"), absl::string_view::npos)
      << groups.status();
  ModelConfig odd_ffn = Glm4vLike(32, 2);
  odd_ffn.ffn_hidden_size = 13697;
  EXPECT_FALSE(PlanShard(odd_ffn, 0, 2).ok());
  EXPECT_FALSE(PlanShard(Glm4vLike(32, 2), 2, 2).ok());     // rank outside the group
  EXPECT_TRUE(PlanShard(Glm4vLike(32, 4), 5, 8).ok());      // 8 % 4 == 0: replicate
}

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";

// Rows [begin, end) of a checkpoint tensor as f32.
std::vector<float> FullRows(const Checkpoint& ckpt, const std::string& name, int64_t begin,
                            int64_t end) {
  Tensor t = ckpt.GetRows(name, begin, end).value().ToF32();
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}
// Rows [begin, end) of a loaded weight (bf16 weights stay bf16 on the CPU) as f32.
std::vector<float> Rows(const Tensor& t, int64_t begin, int64_t end) {
  const Tensor f = t.dtype() == DType::kF32 ? t : t.ToF32();
  const int64_t w = f.numel() / f.dim(0);
  return std::vector<float>(f.data<float>() + begin * w, f.data<float>() + end * w);
}

// GLM-4's 2 KV groups: DCP splits a group's tokens among the ranks that replicate it.
TEST(DecodeContextParallelTest, DefaultsAndLimits) {
  const ModelConfig c = Glm4vLike(32, 2);
  EXPECT_EQ(DefaultDecodeContextParallel(c, 1), 1);
  EXPECT_EQ(DefaultDecodeContextParallel(c, 2), 1);
  EXPECT_EQ(DefaultDecodeContextParallel(c, 4), 2);
  EXPECT_EQ(DefaultDecodeContextParallel(c, 8), 4);
  for (auto [tp, dcp] : {std::pair{1, 1}, {2, 1}, {4, 2}, {8, 2}, {8, 4}, {8, 1}}) {
    EXPECT_TRUE(CheckDecodeContextParallel(c, tp, dcp).ok()) << tp << " " << dcp;
  }
  for (auto [tp, dcp] : {std::pair{2, 2}, {1, 2}, {4, 4}, {8, 3}, {4, 0}}) {
    const absl::Status s = CheckDecodeContextParallel(c, tp, dcp);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << tp << " " << dcp;
  }
}

TEST(ShardedWeightsTest, EachRankLoadsOnlyItsSlices) {
  auto config = LoadModelConfig(kModelDir);
  ASSERT_TRUE(config.ok()) << config.status();
  auto ckpt = Checkpoint::Open(kModelDir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  Backend* cpu = GetBackend("cpu").value();
  const ModelConfig& c = *config;
  const int64_t d = c.kv_channels, hidden = c.hidden_size, ffn = c.ffn_hidden_size;
  const std::string l0 = "transformer.encoder.layers.0.";
  const size_t elem = DTypeSize(ckpt->Info(l0 + "mlp.dense_h_to_4h.weight")->dtype);

  auto full = LoadDecoderWeights(*ckpt, c, cpu);
  ASSERT_TRUE(full.ok()) << full.status();
  const int64_t full_bytes = full->checkpoint_bytes_read;
  int64_t all_tensor_bytes = 0;
  for (const std::string& name : ckpt->TensorNames()) {
    if (name.rfind("transformer.vision", 0) != 0) all_tensor_bytes += ckpt->Info(name)->nbytes;
  }
  EXPECT_EQ(full_bytes, all_tensor_bytes);  // unsharded: exactly the decoder, once

  for (int tp : {2, 4}) {
    int64_t sum = 0;
    for (int r = 0; r < tp; ++r) {
      SCOPED_TRACE(testing::Message() << "tp " << tp << " rank " << r);
      const TensorParallelShard s = PlanShard(c, r, tp).value();
      auto w = LoadDecoderWeights(*ckpt, c, cpu, s);
      ASSERT_TRUE(w.ok()) << w.status();
      const int kvl = std::max(1, c.multi_query_group_num / tp);
      ASSERT_EQ(s.num_kv_heads, kvl);
      const int64_t q_local = c.num_attention_heads / tp * d, kv_local = kvl * d;
      // Local shapes.
      const DecoderLayerWeights& L = w->layers[0];
      EXPECT_EQ(L.qkv_weight.values.shape(), (Shape{q_local + 2 * kv_local, hidden}));
      EXPECT_EQ(L.qkv_bias.shape(), (Shape{q_local + 2 * kv_local}));
      EXPECT_EQ(L.dense_weight.values.shape(), (Shape{hidden, q_local}));
      EXPECT_EQ(L.h_to_4h_weight.values.shape(), (Shape{2 * ffn / tp, hidden}));
      EXPECT_EQ(L.four_h_to_h_weight.values.shape(), (Shape{hidden, ffn / tp}));
      EXPECT_EQ(w->word_embeddings.shape(), (Shape{c.padded_vocab_size / tp + 1, hidden}));
      EXPECT_EQ(w->output_layer.values.shape(), (Shape{c.padded_vocab_size / tp, hidden}));

      // Contents: q / k / v rows of the local heads and groups; gate and up slices paired.
      const std::string qkv = l0 + "self_attention.query_key_value.weight";
      const int64_t q0 = s.first_head * d, g0 = s.first_kv_head * d;
      EXPECT_EQ(Rows(L.qkv_weight.values, 0, q_local), FullRows(*ckpt, qkv, q0, q0 + q_local));
      EXPECT_EQ(Rows(L.qkv_weight.values, q_local + kv_local, q_local + 2 * kv_local),
                FullRows(*ckpt, qkv, c.q_size() + c.kv_size() + g0,
                         c.q_size() + c.kv_size() + g0 + kv_local));
      const std::string h4h = l0 + "mlp.dense_h_to_4h.weight";
      EXPECT_EQ(Rows(L.h_to_4h_weight.values, 0, s.ffn), FullRows(*ckpt, h4h, s.first_ffn, s.first_ffn + s.ffn));
      EXPECT_EQ(Rows(L.h_to_4h_weight.values, s.ffn, 2 * s.ffn),
                FullRows(*ckpt, h4h, ffn + s.first_ffn, ffn + s.first_ffn + s.ffn));
      Tensor dense = ckpt->Get(l0 + "self_attention.dense.weight").value().ToF32();
      const Tensor local_dense = L.dense_weight.values.ToF32();
      for (int64_t i = 0; i < hidden; ++i) {
        for (int64_t j = 0; j < q_local; ++j) {
          ASSERT_EQ(local_dense.data<float>()[i * q_local + j],
                    dense.data<float>()[i * c.q_size() + q0 + j]);
        }
      }
      EXPECT_EQ(Rows(w->word_embeddings, s.vocab, s.vocab + 1), std::vector<float>(hidden, 0.f));

      // Bytes read = the local tensors exactly (minus the zero row), nothing else.
      int64_t local_elems = w->word_embeddings.numel() - hidden + w->final_norm.numel() +
                            w->output_layer.values.numel();
      for (const DecoderLayerWeights& layer : w->layers) {
        for (const Tensor* t : {&layer.input_norm, &layer.qkv_weight.values, &layer.qkv_bias,
                                &layer.dense_weight.values, &layer.dense_bias, &layer.post_norm,
                                &layer.h_to_4h_weight.values, &layer.h_to_4h_bias,
                                &layer.four_h_to_h_weight.values, &layer.four_h_to_h_bias}) {
          local_elems += t->numel();
        }
      }
      EXPECT_EQ(w->checkpoint_bytes_read, local_elems * static_cast<int64_t>(elem));
      EXPECT_LT(w->checkpoint_bytes_read, full_bytes * 6 / (5 * tp) + 1);
      sum += w->checkpoint_bytes_read;
    }
    // Only norms (and, past 2 ranks, the KV rows) are read by more than one rank.
    EXPECT_LT(sum, full_bytes * 3 / 2);
  }
}

}  // namespace
}  // namespace glm4v
