// GLM-4V image splice: the prompt carries `<|begin_of_image|> <|endoftext|> <|end_of_image|>`
// per image; those 3 rows are replaced by the image's feature rows (boi row, patch rows, eoi
// row). Position ids count the image as if it were the 3 placeholder tokens: tokens up to boi
// keep 0..b, all patch rows share b+1, the eoi row and later tokens keep their text positions.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model_config.h"

namespace glm4v {

struct SplicedPrompt {
  // One entry per spliced row. Image rows keep a placeholder id (boi for the boi row, eoi for
  // the eoi row, the pad/eot id for patch rows) so the sequence can still be hashed and logged.
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;
  // -1 for text tokens; otherwise the row in the concatenation of all images' feature rows.
  std::vector<int32_t> embedding_rows;
  // Index of each image's boi row in the spliced sequence.
  std::vector<int32_t> image_starts;
  // RoPE position of the first generated token (last prompt position + 1).
  int32_t next_position = 0;
};

// `image_rows[i]` is the number of feature rows of image i (config.vision.feature_rows() for
// GLM-4V: 1602). Fails with INVALID_ARGUMENT on: ids outside [0, padded_vocab_size), a boi not
// followed by exactly <placeholder> eoi, an eoi without boi, more placeholders than images or
// fewer, more than `max_images` images, image_rows < 2.
absl::StatusOr<SplicedPrompt> SpliceImages(absl::Span<const int32_t> input_ids,
                                           absl::Span<const int32_t> image_rows,
                                           const ModelConfig& config, int max_images = 1);

}  // namespace glm4v
