#include "model/image_splice.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace glm4v {

absl::StatusOr<SplicedPrompt> SpliceImages(absl::Span<const int32_t> input_ids,
                                           absl::Span<const int32_t> image_rows,
                                           const ModelConfig& config, int max_images) {
  const int32_t boi = config.boi_token_id, eoi = config.eoi_token_id;
  const int32_t placeholder = config.pad_token_id;  // <|endoftext|>
  const int64_t n = input_ids.size();
  for (int64_t i = 0; i < n; ++i) {
    if (input_ids[i] < 0 || input_ids[i] >= config.padded_vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", input_ids[i], " at ", i,
                                                     " outside the vocabulary [0, ",
                                                     config.padded_vocab_size, ")"));
    }
  }
  for (size_t m = 0; m < image_rows.size(); ++m) {
    if (image_rows[m] < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", m, " has ", image_rows[m], " feature rows; need >= 2 (boi, eoi)"));
    }
  }
  if (static_cast<int64_t>(image_rows.size()) > max_images) {
    return absl::InvalidArgumentError(absl::StrCat(image_rows.size(), " images given, at most ",
                                                   max_images, " supported"));
  }

  SplicedPrompt out;
  int images = 0;
  int32_t feature_row = 0;  // first row of the next image in the concatenated features
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = input_ids[i];
    if (id == eoi) {
      return absl::InvalidArgumentError(
          absl::StrCat("<|end_of_image|> at ", i, " without a preceding <|begin_of_image|>"));
    }
    if (id != boi) {
      out.token_ids.push_back(id);
      out.positions.push_back(static_cast<int32_t>(i));
      out.embedding_rows.push_back(-1);
      continue;
    }
    if (i + 2 >= n || input_ids[i + 1] != placeholder || input_ids[i + 2] != eoi) {
      return absl::InvalidArgumentError(absl::StrCat(
          "<|begin_of_image|> at ", i, " must be followed by the placeholder ", placeholder,
          " and <|end_of_image|>"));
    }
    if (images >= max_images) {
      return absl::InvalidArgumentError(absl::StrCat("prompt has more than ", max_images,
                                                     " image(s); at most ", max_images,
                                                     " supported"));
    }
    if (images >= static_cast<int>(image_rows.size())) {
      return absl::InvalidArgumentError(absl::StrCat("prompt has more image placeholders than the ",
                                                     image_rows.size(), " image(s) given"));
    }
    // boi keeps position i, every patch row shares i + 1, eoi keeps its own text position i + 2.
    const int32_t rows = image_rows[images];
    out.image_starts.push_back(static_cast<int32_t>(out.token_ids.size()));
    for (int32_t r = 0; r < rows; ++r) {
      const bool first = r == 0, last = r == rows - 1;
      out.token_ids.push_back(first ? boi : last ? eoi : placeholder);
      out.positions.push_back(static_cast<int32_t>(first ? i : last ? i + 2 : i + 1));
      out.embedding_rows.push_back(feature_row + r);
    }
    feature_row += rows;
    ++images;
    i += 2;
  }
  if (images != static_cast<int>(image_rows.size())) {
    return absl::InvalidArgumentError(absl::StrCat(image_rows.size(), " image(s) given but the prompt has ",
                                                   images, " image placeholder(s)"));
  }
  out.next_position = out.positions.empty() ? 0 : out.positions.back() + 1;
  return out;
}

}  // namespace glm4v
