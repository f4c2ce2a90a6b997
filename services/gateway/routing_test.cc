// Cache-aware routing pieces: the gateway's prompt block hashes equal the engine's own
// (worker/sequence.h) for text and image prompts at several block sizes; the prefix index ages
// out and caps; the policy trades cached rows against load and KV pressure.
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/model_config.h"
#include "gtest/gtest.h"
#include "model/image_splice.h"
#include "services/gateway/prefix_index.h"
#include "services/gateway/prompt_blocks.h"
#include "services/gateway/routing_policy.h"
#include "worker/sequence.h"

namespace glm4v {
namespace {

constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";

// The engine's hashes for the same prompt (as Engine::BuildPrompt builds its SequencePrompt).
std::vector<BlockHash> EngineHashes(const std::vector<uint32_t>& ids,
                                    const std::vector<std::string>& image_ids,
                                    const ModelConfig& config, int block_size) {
  const std::vector<int32_t> input(ids.begin(), ids.end());
  std::vector<int32_t> image_rows(image_ids.size(), config.vision.feature_rows());
  SplicedPrompt spliced =
      SpliceImages(input, image_rows, config, static_cast<int>(image_ids.size())).value();
  worker::SequencePrompt prompt;
  prompt.token_ids = spliced.token_ids;
  prompt.positions = spliced.positions;
  prompt.next_position = spliced.next_position;
  if (!image_ids.empty()) {
    prompt.embedding_rows = spliced.embedding_rows;
    for (size_t i = 0; i < image_ids.size(); ++i) {
      worker::SequenceImage image;
      image.content_hash = HashImageContent(image_ids[i]);
      image.first_feature_row = static_cast<int32_t>(i) * config.vision.feature_rows();
      image.num_rows = config.vision.feature_rows();
      prompt.images.push_back(image);
    }
  }
  const int rows = static_cast<int>(prompt.token_ids.size());
  worker::Sequence seq("r", 0, std::move(prompt), worker::SamplingParams{}, 1,
                       absl::flat_hash_set<int32_t>{}, rows + 8);
  return seq.BlockHashes((rows - 1) / block_size, block_size);
}

TEST(PromptBlocksTest, EqualTheEngineBlockHashes) {
  const ModelConfig config = LoadModelConfig(kModelDir).value();
  std::vector<uint32_t> text;
  for (uint32_t i = 0; i < 70; ++i) text.push_back((i * 37) % 900);
  std::vector<uint32_t> with_image = {config.boi_token_id >= 0 ? 5u : 5u, 6u, 7u};
  with_image.push_back(static_cast<uint32_t>(config.boi_token_id));
  with_image.push_back(static_cast<uint32_t>(config.eos_token_ids[0]));  // the placeholder
  with_image.push_back(static_cast<uint32_t>(config.eoi_token_id));
  for (uint32_t i = 0; i < 40; ++i) with_image.push_back(100 + i);
  for (int block_size : {4, 16, 32}) {
    SCOPED_TRACE(block_size);
    auto text_blocks = PromptBlocks::Create(text, {}, config);
    ASSERT_TRUE(text_blocks.ok()) << text_blocks.status();
    EXPECT_EQ(text_blocks->Hashes(block_size), EngineHashes(text, {}, config, block_size));
    auto image_blocks = PromptBlocks::Create(with_image, {"sha256:abc"}, config);
    ASSERT_TRUE(image_blocks.ok()) << image_blocks.status();
    EXPECT_EQ(image_blocks->rows(),
              static_cast<int>(with_image.size()) - 3 + config.vision.feature_rows());
    const std::vector<BlockHash> engine = EngineHashes(with_image, {"sha256:abc"}, config,
                                                       block_size);
    ASSERT_FALSE(engine.empty());
    EXPECT_EQ(image_blocks->Hashes(block_size), engine);
    // Another image with the same text shares no block from the image on.
    auto other = PromptBlocks::Create(with_image, {"sha256:def"}, config);
    ASSERT_TRUE(other.ok());
    EXPECT_NE(other->Hashes(block_size).back(), engine.back());
  }
  // Placeholders that do not match the images are refused.
  EXPECT_FALSE(PromptBlocks::Create(with_image, {}, config).ok());
}

TEST(PrefixIndexTest, MatchesLeadingBlocksAgesOutAndCaps) {
  std::vector<BlockHash> chain;
  for (uint64_t i = 1; i <= 10; ++i) chain.push_back({i, i * 7});
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  PrefixIndex index(absl::Minutes(10), /*max_blocks=*/20);
  EXPECT_EQ(index.MatchedBlocks(chain, t0), 0);
  index.Record(absl::MakeConstSpan(chain).subspan(0, 6), t0);
  EXPECT_EQ(index.MatchedBlocks(chain, t0), 6);
  // A missing block ends the match even if later ones are known.
  index.Record(absl::MakeConstSpan(chain).subspan(8, 2), t0);
  EXPECT_EQ(index.MatchedBlocks(chain, t0 + absl::Minutes(1)), 6);
  // Aged out.
  EXPECT_EQ(index.MatchedBlocks(chain, t0 + absl::Minutes(11)), 0);
  index.Prune(t0 + absl::Minutes(11));
  EXPECT_EQ(index.size(), 0u);
  // Beyond capacity the oldest go first.
  for (int i = 0; i < 30; ++i) {
    const BlockHash h{static_cast<uint64_t>(100 + i), 1};
    index.Record(absl::MakeConstSpan(&h, 1), t0 + absl::Seconds(i));
  }
  EXPECT_LE(index.size(), 20u);
  const BlockHash newest{129, 1}, oldest{100, 1};
  EXPECT_EQ(index.MatchedBlocks(absl::MakeConstSpan(&newest, 1), t0 + absl::Seconds(30)), 1);
  EXPECT_EQ(index.MatchedBlocks(absl::MakeConstSpan(&oldest, 1), t0 + absl::Seconds(30)), 0);
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
}

TEST(RoutingPolicyTest, CachedRowsAgainstLoadAndKvPressure) {
  RoutingOptions options;
  options.load_token_cost = 256;
  // Nothing cached anywhere: least loaded (ties: the first).
  EXPECT_EQ(ChooseCacheAware({{3, 0, 0}, {1, 0, 0}, {1, 0, 0}}, 2000, options), 1);
  // The image (1,600 rows) cached on a worker with two more sequences: worth it.
  EXPECT_EQ(ChooseCacheAware({{0, 0, 0}, {2, 0, 1600}}, 1700, options), 1);
  // ... but not with ten more.
  EXPECT_EQ(ChooseCacheAware({{0, 0, 0}, {10, 0, 1600}}, 1700, options), 0);
  // A nearly full KV cache makes the cached worker costlier.
  EXPECT_EQ(ChooseCacheAware({{0, 0.2, 0}, {2, 0.99, 1600}}, 1700, options), 0);
  // Equal cost: the lower load.
  EXPECT_EQ(ChooseCacheAware({{1, 0, 256}, {0, 0, 0}}, 1000, options), 1);
  EXPECT_TRUE(ParseRoutingPolicy("cache_aware").ok());
  EXPECT_TRUE(ParseRoutingPolicy("affinity_hash").ok());
  EXPECT_EQ(ParseRoutingPolicy("random").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
