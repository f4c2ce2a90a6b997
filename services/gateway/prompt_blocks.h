// The KV blocks a prompt will occupy on a decoder worker, as the worker's prefix cache names
// them: the spliced rows (model/image_splice.h, exactly as the engine builds them) hashed with
// the engine's chained block hash (common/block_hash.h), image rows by the vision service's
// content hash. Equal hashes on the gateway and in a worker's cache mean the same KV contents,
// so the gateway can estimate how much of a prompt a worker still holds (cache-aware routing).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/block_hash.h"
#include "common/model_config.h"

namespace glm4v {

class PromptBlocks {
 public:
  // `ids`: the prompt with one image triple per entry of `image_content_hashes` (the vision
  // service's EncodedImage.content_hash of each image, in order).
  static absl::StatusOr<PromptBlocks> Create(absl::Span<const uint32_t> ids,
                                             const std::vector<std::string>& image_content_hashes,
                                             const ModelConfig& config);

  PromptBlocks(PromptBlocks&&) = default;
  PromptBlocks& operator=(PromptBlocks&&) = default;

  // Rows after the image splice (what the worker computes, cached or not).
  int rows() const { return static_cast<int>(rows_.size()); }
  // Chained hashes of the blocks of `block_size` rows a worker may serve from its prefix cache
  // for this prompt: the full blocks before the last row (the engine always computes the last
  // prompt row, for its logits). Computed once per block size.
  const std::vector<BlockHash>& Hashes(int block_size);

 private:
  PromptBlocks() = default;

  std::vector<BlockHash> image_hashes_;  // rows_ point into it
  std::vector<RowIdentity> rows_;
  std::map<int, std::vector<BlockHash>> by_block_size_;
};

}  // namespace glm4v
