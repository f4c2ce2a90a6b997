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

// INVALID_ARGUMENT for bad images (see DecodeImage) or image_size < 1.
absl::StatusOr<PixelTensor> PreprocessImage(absl::string_view bytes, int image_size,
                                            const DecodeLimits& limits = DecodeLimits(),
                                            absl::string_view mime_hint = "");

// The same for an already decoded image.
absl::StatusOr<PixelTensor> PreprocessRgb(const RgbImage& image, int image_size);

}  // namespace glm4v
