#include "services/vision/image/preprocess.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace glm4v {

absl::StatusOr<PixelTensor> PreprocessRgb(const RgbImage& image, int image_size) {
  if (image_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("image_size must be >= 1, got %d", image_size));
  }
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("preprocess: malformed RGB image");
  }
  if (image.width == image_size && image.height == image_size) return NormalizeClip(image);
  return NormalizeClip(ResizeBicubic(image, image_size, image_size));
}

absl::StatusOr<PixelTensor> PreprocessImage(absl::string_view bytes, int image_size,
                                            const DecodeLimits& limits,
                                            absl::string_view mime_hint) {
  // Fail before paying for a decode.
  if (image_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("image_size must be >= 1, got %d", image_size));
  }
  ASSIGN_OR_RETURN(RgbImage image, DecodeImage(bytes, limits, mime_hint));
  return PreprocessRgb(image, image_size);
}

}  // namespace glm4v
