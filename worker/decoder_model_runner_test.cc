// DecoderModelRunner's captured-decode path (forced on for the CPU, where RunCaptured just runs
// the step over the bucket's fixed buffers) against ordinary eager steps: the same greedy ids
// and logits within 1e-5 for batches of 1, 3 (padded to 4) and 9 (padded to 16) whose KV spans
// several blocks; batches that are not plain decode steps run eagerly.
#include "worker/decoder_model_runner.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "common/safetensors.h"
#include "gtest/gtest.h"
#include "kernels/backends.h"

namespace glm4v::worker {
namespace {

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";
constexpr int kBlockSize = 4;
constexpr int kBlocksPerSeq = 12;  // 48 tokens

class DecoderModelRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto backend = GetBackend("cpu");
    ASSERT_TRUE(backend.ok()) << backend.status();
    auto config = LoadModelConfig(kModelDir);
    ASSERT_TRUE(config.ok()) << config.status();
    auto checkpoint = Checkpoint::Open(kModelDir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    auto decoder = Decoder::Load(*checkpoint, *config, *backend);
    ASSERT_TRUE(decoder.ok()) << decoder.status();
    decoder_ = new std::shared_ptr<const Decoder>(std::move(*decoder));
  }
  static void TearDownTestSuite() { delete decoder_; }

  static std::unique_ptr<DecoderModelRunner> NewRunner(bool graphs, int max_batch = 16,
                                                       int max_model_len = 64) {
    DecoderRunnerOptions options;
    options.decode_graphs = graphs;
    options.max_batch = max_batch;
    options.max_model_len = max_model_len;
    auto runner = std::make_unique<DecoderModelRunner>(*decoder_, options);
    KvCacheShape shape = runner->KvBlockShape(kBlockSize);
    shape.num_blocks = 16 * kBlocksPerSeq;
    EXPECT_TRUE(runner->AllocateKvCache(shape).ok());
    return runner;
  }

  // Sequence s of a batch: a prompt of 5 + 3 s tokens in blocks [s * 12, s * 12 + 12),
  // listed backwards (non-contiguous on purpose).
  static SequenceChunk Prompt(int s) {
    SequenceChunk c;
    const int n = 5 + 3 * s;
    for (int i = 0; i < n; ++i) {
      c.token_ids.push_back((s * 131 + i * 71) % 1000);
      c.positions.push_back(i);
    }
    for (int b = kBlocksPerSeq - 1; b >= 0; --b) c.block_table.push_back(s * kBlocksPerSeq + b);
    c.logits = SequenceChunk::Logits::kLast;
    return c;
  }

  // One decode token of sequence s with `cached` tokens before it.
  static SequenceChunk Decode(int s, int32_t token, int32_t cached) {
    SequenceChunk c;
    c.token_ids = {token};
    c.positions = {cached};
    c.num_cached = cached;
    c.block_table = Prompt(s).block_table;
    return c;
  }

  static int32_t Argmax(const Tensor& logits, int row) {
    const int64_t v = logits.dim(1);
    const float* p = logits.data<float>() + row * v;
    return static_cast<int32_t>(std::max_element(p, p + v) - p);
  }

  // Prefills `n` sequences in one step, then decodes `steps` greedy tokens for all of them
  // together; returns every step's logits (host f32) and appends the chosen ids to *ids.
  static std::vector<Tensor> Generate(DecoderModelRunner* runner, int n, int steps,
                                      std::vector<int32_t>* ids) {
    DecoderBatch batch;
    for (int s = 0; s < n; ++s) batch.sequences.push_back(Prompt(s));
    std::vector<Tensor> all;
    for (int step = 0; step <= steps; ++step) {
      auto out = runner->Execute(batch);
      EXPECT_TRUE(out.ok()) << out.status();
      if (!out.ok()) return all;
      EXPECT_EQ(out->logits.dim(0), n);
      all.push_back(out->logits);
      for (int s = 0; s < n; ++s) {
        SequenceChunk& c = batch.sequences[s];
        const int32_t next = Argmax(out->logits, s);
        ids->push_back(next);
        c.num_cached += static_cast<int32_t>(c.token_ids.size());
        const int32_t position = c.positions.back() + 1;
        c.token_ids = {next};
        c.positions = {position};
      }
    }
    return all;
  }

  static std::shared_ptr<const Decoder>* decoder_;
};
std::shared_ptr<const Decoder>* DecoderModelRunnerTest::decoder_ = nullptr;

TEST_F(DecoderModelRunnerTest, CapturedDecodeMatchesEager) {
  for (int n : {1, 3, 9}) {
    SCOPED_TRACE(n);
    auto eager = NewRunner(/*graphs=*/false);
    auto captured = NewRunner(/*graphs=*/true);
    ASSERT_FALSE(eager->decode_graphs());
    ASSERT_TRUE(captured->decode_graphs());
    // The longest prompt (5 + 3 * 8 = 29 tokens) plus 10 steps spans 10 blocks of 4.
    constexpr int kSteps = 10;
    std::vector<int32_t> eager_ids, captured_ids;
    const std::vector<Tensor> want = Generate(eager.get(), n, kSteps, &eager_ids);
    const std::vector<Tensor> got = Generate(captured.get(), n, kSteps, &captured_ids);
    EXPECT_EQ(captured_ids, eager_ids);
    EXPECT_EQ(eager->captured_steps(), 0);
    EXPECT_EQ(captured->captured_steps(), kSteps);  // every step but the prefill
    ASSERT_EQ(got.size(), want.size());
    for (size_t step = 0; step < want.size(); ++step) {
      ASSERT_EQ(got[step].shape(), want[step].shape());
      double err = 0;
      for (int64_t i = 0; i < want[step].numel(); ++i) {
        err = std::max(err, std::fabs(static_cast<double>(got[step].data<float>()[i]) -
                                      want[step].data<float>()[i]));
      }
      EXPECT_LE(err, 1e-5) << "step " << step;
    }
  }
}

TEST_F(DecoderModelRunnerTest, OnlyPlainDecodeBatchesRunCaptured) {
  auto runner = NewRunner(/*graphs=*/true, /*max_batch=*/2, /*max_model_len=*/16);
  DecoderBatch batch;
  batch.sequences.push_back(Prompt(0));
  ASSERT_TRUE(runner->Execute(batch).ok());  // prefill: eager
  EXPECT_EQ(runner->captured_steps(), 0);

  SequenceChunk decode = Decode(0, 7, 5);
  batch.sequences = {decode};
  ASSERT_TRUE(runner->Execute(batch).ok());
  EXPECT_EQ(runner->captured_steps(), 1);

  batch.sequences[0].logits = SequenceChunk::Logits::kAll;  // not the sampling shape
  ASSERT_TRUE(runner->Execute(batch).ok());
  EXPECT_EQ(runner->captured_steps(), 1);

  batch.sequences = {Decode(0, 7, 0), Decode(1, 7, 0), Decode(2, 7, 0)};  // > max_batch
  ASSERT_TRUE(runner->Execute(batch).ok());
  EXPECT_EQ(runner->captured_steps(), 1);

  batch.sequences = {Decode(0, 7, 16)};  // beyond max_model_len
  ASSERT_TRUE(runner->Execute(batch).ok());
  EXPECT_EQ(runner->captured_steps(), 1);

  // Bad batches are still rejected before anything runs.
  decode.token_ids = {-1};
  batch.sequences = {decode};
  EXPECT_EQ(runner->Execute(batch).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DecoderModelRunnerTest, CpuDefaultsAndBf16Cache) {
  DecoderModelRunner runner(*decoder_);
  EXPECT_FALSE(runner.decode_graphs());  // the CPU backend does not capture
  EXPECT_EQ(runner.kv_dtype(), DType::kF32);
  EXPECT_EQ(runner.kv_element_size(), 4u);

  DecoderRunnerOptions options;
  options.kv_dtype = DType::kBF16;
  options.decode_graphs = true;
  DecoderModelRunner bf16(*decoder_, options);
  EXPECT_EQ(bf16.kv_element_size(), 2u);
  KvCacheShape shape = bf16.KvBlockShape(kBlockSize);
  shape.num_blocks = kBlocksPerSeq;
  ASSERT_TRUE(bf16.AllocateKvCache(shape).ok());
  EXPECT_EQ(bf16.AllocateKvCache(shape).code(), absl::StatusCode::kFailedPrecondition);
  DecoderBatch batch;
  batch.sequences.push_back(Prompt(0));
  ASSERT_TRUE(bf16.Execute(batch).ok());
  batch.sequences = {Decode(0, 3, 5)};
  auto out = bf16.Execute(batch);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(bf16.captured_steps(), 1);
  EXPECT_EQ(out->row_offsets, (std::vector<int32_t>{0, 1}));
}

}  // namespace
}  // namespace glm4v::worker
