// Image bytes -> the vision tower's input: decode, PIL-bicubic resize to the model's
// square image_size (vision_config.image_size), CLIP-normalize to float32 [3, S, S].
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/bicubic_resize.h"
#include "services/vision/image/clip_normalize.h"
#include "services/vision/image/image_decoder.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

struct PreprocessOptions {
  // JPEGs at least twice the target size are decoded at 1/2, 1/4 or 1/8 scale in the DCT domain
  // (as far as they stay >= image_size) before the bicubic pass: about 2x faster for a phone
  // photo, but no longer Pillow's pixels (docs/PERFORMANCE.md gives the measured error). Off by
  // default; the vision server's --jpeg_dct_scaling.
  bool jpeg_dct_scaling = false;
};

// INVALID_ARGUMENT for bad images (see DecodeImage) or image_size < 1.
absl::StatusOr<PixelTensor> PreprocessImage(absl::string_view bytes, int image_size,
                                            const DecodeLimits& limits = DecodeLimits(),
                                            absl::string_view mime_hint = "",
                                            const PreprocessOptions& options = {});

// The same for an already decoded image.
absl::StatusOr<PixelTensor> PreprocessRgb(const RgbImage& image, int image_size);

}  // namespace glm4v
