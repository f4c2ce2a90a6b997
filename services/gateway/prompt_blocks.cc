#include "services/gateway/prompt_blocks.h"

#include "common/status_macros.h"
#include "model/image_splice.h"

namespace glm4v {

absl::StatusOr<PromptBlocks> PromptBlocks::Create(
    absl::Span<const uint32_t> ids, const std::vector<std::string>& image_content_hashes,
    const ModelConfig& config) {
  std::vector<int32_t> input(ids.begin(), ids.end());
  const int rows_per_image = config.has_vision ? config.vision.feature_rows() : 0;
  std::vector<int32_t> image_rows(image_content_hashes.size(), rows_per_image);
  ASSIGN_OR_RETURN(SplicedPrompt spliced,
                   SpliceImages(input, image_rows, config,
                                static_cast<int>(image_content_hashes.size())));
  PromptBlocks blocks;
  for (const std::string& hash : image_content_hashes) {
    blocks.image_hashes_.push_back(HashImageContent(hash));
  }
  blocks.rows_.resize(spliced.token_ids.size());
  for (size_t i = 0; i < spliced.token_ids.size(); ++i) {
    RowIdentity& row = blocks.rows_[i];
    row.token_id = spliced.token_ids[i];
    row.position = spliced.positions[i];
    row.cache_index = static_cast<int32_t>(i);
    const int32_t feature_row = spliced.embedding_rows.empty() ? -1 : spliced.embedding_rows[i];
    if (feature_row >= 0 && rows_per_image > 0) {
      row.image_hash = &blocks.image_hashes_[feature_row / rows_per_image];
      row.image_row = feature_row % rows_per_image;
    }
  }
  return blocks;
}

const std::vector<BlockHash>& PromptBlocks::Hashes(int block_size) {
  auto [it, inserted] = by_block_size_.try_emplace(block_size);
  if (!inserted || block_size <= 0) return it->second;
  const int full = (rows() - 1) / block_size;  // the last row is always computed
  std::vector<BlockHash>& hashes = it->second;
  for (int b = 0; b < full; ++b) {
    hashes.push_back(HashBlock(b == 0 ? BlockHash{} : hashes.back(),
                               absl::MakeConstSpan(rows_).subspan(b * block_size, block_size)));
  }
  return hashes;
}

}  // namespace glm4v
