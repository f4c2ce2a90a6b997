#include "services/vision/image/image_decoder.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "services/vision/image/image_format.h"
#include "services/vision/image/jpeg_decoder.h"
#include "services/vision/image/png_decoder.h"

namespace glm4v {

absl::StatusOr<RgbImage> DecodeImage(absl::string_view bytes, const DecodeLimits& limits,
                                     absl::string_view mime_hint) {
  if (bytes.empty()) return absl::InvalidArgumentError("image: empty input");
  if (static_cast<int64_t>(bytes.size()) > limits.max_input_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "image: %d bytes, more than the limit of %d bytes", bytes.size(), limits.max_input_bytes));
  }
  const ImageFormat format = DetectImageFormat(bytes);
  switch (format) {
    case ImageFormat::kPng:
      return DecodePng(bytes, limits);
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, limits);
    case ImageFormat::kUnknown: {
      const ImageFormat hinted = FormatFromMimeType(mime_hint);
      if (hinted != ImageFormat::kUnknown) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "image: declared as %s but the bytes are not a recognized image (no %s signature)",
            mime_hint, ImageFormatName(hinted)));
      }
      return absl::InvalidArgumentError(
          "image: unrecognized format (supported: PNG, JPEG)");
    }
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "image: %s is not supported (supported: PNG, JPEG)", ImageFormatName(format)));
  }
}

}  // namespace glm4v
