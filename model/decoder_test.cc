// Decoder::Forward on the tiny checkpoint: every way of feeding a prompt (one prefill, token by
// token, chunked, batched with other sequences) gives the same logits, and bad input is a
// clear INVALID_ARGUMENT.
#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/glm4v_model.h"
#include "model/image_splice.h"

namespace glm4v {
namespace {

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";
constexpr double kRel = 1e-5;

class DecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto backend = GetBackend("cpu");
    ASSERT_TRUE(backend.ok());
    auto model = LoadGlm4vModel(kModelDir, *backend);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new Glm4vModel(std::move(*model));
  }
  static void TearDownTestSuite() { delete model_; }

  const Decoder& decoder() const { return *model_->decoder; }
  int64_t vocab() const { return model_->config.padded_vocab_size; }

  // A prompt: text, or with one image spliced in (features from random pixels).
  struct Prompt {
    SplicedPrompt spliced;
    Tensor features;
  };
  Prompt TextPrompt(int n, int seed) const {
    Prompt p;
    for (int i = 0; i < n; ++i) {
      p.spliced.token_ids.push_back((seed * 131 + i * 71) % 1000);
      p.spliced.positions.push_back(i);
      p.spliced.embedding_rows.push_back(-1);
    }
    p.spliced.next_position = n;
    return p;
  }
  Prompt ImagePrompt() const {
    const int s = model_->config.vision.image_size;
    std::vector<float> pixels(3 * s * s);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::cos(0.11 * i);
    auto features = model_->vision->Forward(Tensor::FromF32({1, 3, s, s}, pixels));
    EXPECT_TRUE(features.ok());
    Prompt p;
    p.features = features->Reshape({-1, model_->config.hidden_size}).value();
    std::vector<int32_t> ids = {1004, 1005, 1003, 17, 1001, 1000, 1002, 55, 66, 77, 1006};
    auto spliced = SpliceImages(ids, {static_cast<int32_t>(p.features.dim(0))}, model_->config);
    EXPECT_TRUE(spliced.ok());
    p.spliced = *spliced;
    return p;
  }

  // Tokens [begin, end) of a prompt as a chunk.
  static SequenceChunk Chunk(const Prompt& p, int begin, int end, std::vector<int32_t> blocks,
                             SequenceChunk::Logits logits = SequenceChunk::Logits::kAll) {
    SequenceChunk c;
    const auto& s = p.spliced;
    c.token_ids.assign(s.token_ids.begin() + begin, s.token_ids.begin() + end);
    c.positions.assign(s.positions.begin() + begin, s.positions.begin() + end);
    c.embedding_rows.assign(s.embedding_rows.begin() + begin, s.embedding_rows.begin() + end);
    c.embeddings = p.features;
    c.num_cached = begin;
    c.block_table = std::move(blocks);
    c.logits = logits;
    return c;
  }

  std::vector<float> Run(std::vector<SequenceChunk> chunks, PagedKvCache* cache,
                         DecoderOutput* out_meta = nullptr) const {
    DecoderBatch batch;
    batch.sequences = std::move(chunks);
    auto out = decoder().Forward(batch, cache);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    if (out_meta != nullptr) *out_meta = *out;
    const float* p = out->logits.data<float>();
    return std::vector<float>(p, p + out->logits.numel());
  }

  // max |a - b| <= kRel * max |b|
  static void ExpectClose(const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    double err = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    EXPECT_LE(err, kRel * scale);
    EXPECT_GT(scale, 0);
  }

  PagedKvCache NewCache(int blocks = 64, int block_size = 4,
                        DType dtype = DType::kF32) const {
    auto cache = decoder().backend()->AllocateKvCache(decoder().CacheShape(blocks, block_size),
                                                      dtype);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return *std::move(cache);
  }

  static Glm4vModel* model_;
};
Glm4vModel* DecoderTest::model_ = nullptr;

std::vector<int32_t> Blocks(int first, int count) {
  std::vector<int32_t> b(count);
  std::iota(b.begin(), b.end(), first);
  std::reverse(b.begin(), b.end());  // non-contiguous order on purpose
  return b;
}

TEST_F(DecoderTest, PrefillAllEqualsTokenByTokenEqualsChunked) {
  for (const Prompt& p : {TextPrompt(23, 1), ImagePrompt()}) {
    const int n = static_cast<int>(p.spliced.token_ids.size());
    PagedKvCache cache = NewCache();
    const std::vector<float> all = Run({Chunk(p, 0, n, Blocks(0, 10))}, &cache);
    ASSERT_EQ(all.size(), static_cast<size_t>(n * vocab()));

    // One token per step (the first as a 1-token prefill), kLast each time.
    PagedKvCache cache2 = NewCache();
    std::vector<float> stepwise;
    for (int i = 0; i < n; ++i) {
      auto row = Run({Chunk(p, i, i + 1, Blocks(20, 10), SequenceChunk::Logits::kLast)}, &cache2);
      stepwise.insert(stepwise.end(), row.begin(), row.end());
    }
    ExpectClose(stepwise, all);

    // Chunks of 5 that straddle block boundaries and the image.
    PagedKvCache cache3 = NewCache();
    std::vector<float> chunked;
    for (int b = 0; b < n; b += 5) {
      auto rows = Run({Chunk(p, b, std::min(n, b + 5), Blocks(30, 10))}, &cache3);
      chunked.insert(chunked.end(), rows.begin(), rows.end());
    }
    ExpectClose(chunked, all);
  }
}

TEST_F(DecoderTest, BatchOfSequencesEqualsEachAlone) {
  const Prompt a = TextPrompt(13, 2), b = ImagePrompt(), c = TextPrompt(9, 3);
  const int na = 13, nb = static_cast<int>(b.spliced.token_ids.size()), nc = 9;
  // Alone.
  PagedKvCache alone = NewCache();
  const auto la = Run({Chunk(a, 0, na, Blocks(0, 4))}, &alone);
  const auto lb = Run({Chunk(b, 0, nb, Blocks(4, 9))}, &alone);
  const auto lc = Run({Chunk(c, 0, nc, Blocks(13, 3))}, &alone);

  // Together in one shared cache: a full prefill, the second half of b's prefill (its first
  // half cached by an earlier step), and c's last token as a decode step.
  PagedKvCache shared = NewCache();
  const int half = nb / 2;
  Run({Chunk(b, 0, half, Blocks(20, 9), SequenceChunk::Logits::kNone),
       Chunk(c, 0, nc - 1, Blocks(40, 3), SequenceChunk::Logits::kNone)},
      &shared);
  DecoderOutput meta;
  const auto together =
      Run({Chunk(a, 0, na, Blocks(50, 4)), Chunk(b, half, nb, Blocks(20, 9)),
           Chunk(c, nc - 1, nc, Blocks(40, 3), SequenceChunk::Logits::kLast)},
          &shared, &meta);
  ASSERT_EQ(meta.row_offsets, (std::vector<int32_t>{0, na, na + nb - half, na + nb - half + 1}));
  const int64_t v = vocab();
  ExpectClose(std::vector<float>(together.begin(), together.begin() + na * v), la);
  ExpectClose(std::vector<float>(together.begin() + na * v, together.begin() + (na + nb - half) * v),
              std::vector<float>(lb.begin() + half * v, lb.end()));
  ExpectClose(std::vector<float>(together.end() - v, together.end()),
              std::vector<float>(lc.end() - v, lc.end()));
}

TEST_F(DecoderTest, LogitsModesAndEmptyBatch) {
  const Prompt p = TextPrompt(6, 4);
  PagedKvCache cache = NewCache();
  DecoderOutput meta;
  auto none = Run({Chunk(p, 0, 6, Blocks(0, 2), SequenceChunk::Logits::kNone)}, &cache, &meta);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(meta.row_offsets, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(meta.logits.shape(), (Shape{0, vocab()}));
  Run({}, &cache, &meta);
  EXPECT_EQ(meta.row_offsets, (std::vector<int32_t>{0}));
}

// Only the blocks a sequence needs are read from its table (the rest may be anything).
TEST_F(DecoderTest, BlockTableEntriesBeyondTheNeededOnesAreIgnored) {
  const Prompt p = TextPrompt(7, 5);
  PagedKvCache cache = NewCache();
  const auto want = Run({Chunk(p, 0, 7, {3, 9})}, &cache);
  PagedKvCache cache2 = NewCache();
  ExpectClose(Run({Chunk(p, 0, 7, {3, 9, -1, 1 << 20})}, &cache2), want);
}

// A bf16 KV cache (the GPU's) under f32 activations: every logits row stays within the
// README's bf16 cosine of the f32 cache's.
TEST_F(DecoderTest, Bf16KvCacheStaysClose) {
  const Prompt p = TextPrompt(19, 6);
  PagedKvCache f32 = NewCache();
  const auto want = Run({Chunk(p, 0, 10, Blocks(0, 5))}, &f32);
  const auto want_rest = Run({Chunk(p, 10, 19, Blocks(0, 5))}, &f32);
  PagedKvCache bf16 = NewCache(64, 4, DType::kBF16);
  ASSERT_EQ(bf16.dtype(), DType::kBF16);
  auto got = Run({Chunk(p, 0, 10, Blocks(0, 5))}, &bf16);
  const auto got_rest = Run({Chunk(p, 10, 19, Blocks(0, 5))}, &bf16);
  got.insert(got.end(), got_rest.begin(), got_rest.end());
  std::vector<float> all = want;
  all.insert(all.end(), want_rest.begin(), want_rest.end());
  ASSERT_EQ(got.size(), all.size());
  const int64_t v = vocab();
  for (size_t r = 0; r < all.size() / v; ++r) {
    double dot = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < v; ++i) {
      dot += static_cast<double>(got[r * v + i]) * all[r * v + i];
      aa += static_cast<double>(got[r * v + i]) * got[r * v + i];
      bb += static_cast<double>(all[r * v + i]) * all[r * v + i];
    }
    EXPECT_GE(dot / std::sqrt(aa * bb), 0.999) << "row " << r;
  }
}

class DecoderBadInputTest : public DecoderTest {
 protected:
  void ExpectInvalid(SequenceChunk chunk, PagedKvCache* cache = nullptr) {
    PagedKvCache own = NewCache();
    DecoderBatch batch;
    batch.sequences.push_back(TextChunk());  // a valid neighbour must not hide the error
    batch.sequences.push_back(std::move(chunk));
    auto out = decoder().Forward(batch, cache ? cache : &own);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  }
  SequenceChunk TextChunk() const { return Chunk(TextPrompt(5, 9), 0, 5, Blocks(30, 2)); }
};

TEST_F(DecoderBadInputTest, TokenIdsOutsideVocabulary) {
  SequenceChunk c = TextChunk();
  c.token_ids[2] = static_cast<int32_t>(vocab());
  ExpectInvalid(c);
  c.token_ids[2] = -3;
  ExpectInvalid(c);
}

TEST_F(DecoderBadInputTest, ShortOrWildBlockTable) {
  SequenceChunk c = TextChunk();
  c.num_cached = 4;  // 9 tokens need 3 blocks of 4
  ExpectInvalid(c);
  c = TextChunk();
  c.block_table = {1, 64};
  ExpectInvalid(c);
  c.block_table = {-1, 2};
  ExpectInvalid(c);
}

TEST_F(DecoderBadInputTest, SizeMismatches) {
  SequenceChunk c = TextChunk();
  c.positions.pop_back();
  ExpectInvalid(c);
  c = TextChunk();
  c.embedding_rows = {-1, -1};
  ExpectInvalid(c);
  c = TextChunk();
  c.token_ids.clear();
  c.positions.clear();
  c.embedding_rows.clear();
  ExpectInvalid(c);
  c = TextChunk();
  c.positions[0] = -1;
  ExpectInvalid(c);
  c = TextChunk();
  c.num_cached = -1;
  ExpectInvalid(c);
}

TEST_F(DecoderBadInputTest, ImageRowsWithoutOrOutsideEmbeddings) {
  SequenceChunk c = TextChunk();
  c.embedding_rows[1] = 0;  // no embeddings tensor
  ExpectInvalid(c);
  c.embeddings = Tensor::Zeros(DType::kF32, {2, model_->config.hidden_size});
  c.embedding_rows[1] = 2;  // outside
  ExpectInvalid(c);
  c.embeddings = Tensor::Zeros(DType::kF32, {4, model_->config.hidden_size + 1});  // wrong width
  c.embedding_rows[1] = 0;
  ExpectInvalid(c);
}

TEST_F(DecoderBadInputTest, CacheOfTheWrongShape) {
  KvCacheShape shape = decoder().CacheShape(64, 4);
  shape.num_kv_heads += 1;
  PagedKvCache wrong = decoder().backend()->AllocateKvCache(shape, DType::kF32).value();
  ExpectInvalid(TextChunk(), &wrong);
  DecoderBatch batch;
  EXPECT_EQ(decoder().Forward(batch, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DecoderBadInputTest, VisionRejectsWrongImageTensorShape) {
  const int s = model_->config.vision.image_size;
  for (Shape shape : std::vector<Shape>{{3, s, s}, {1, 3, s, s + 14}, {1, 1, s, s}, {0, 3, s, s}}) {
    auto out = model_->vision->Forward(Tensor::Zeros(DType::kF32, shape));
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << ShapeToString(shape);
  }
  auto out = model_->vision->Forward(Tensor::Zeros(DType::kBF16, {1, 3, s, s}));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_->vision->Forward(Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
