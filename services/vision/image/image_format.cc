#include "services/vision/image/image_format.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace glm4v {

ImageFormat DetectImageFormat(absl::string_view b) {
  if (absl::StartsWith(b, absl::string_view("\x89PNG\r\n\x1a\n", 8))) return ImageFormat::kPng;
  if (absl::StartsWith(b, "\xFF\xD8\xFF")) return ImageFormat::kJpeg;
  if (absl::StartsWith(b, "GIF87a") || absl::StartsWith(b, "GIF89a")) return ImageFormat::kGif;
  if (absl::StartsWith(b, "BM")) return ImageFormat::kBmp;
  if (b.size() >= 12 && absl::StartsWith(b, "RIFF") && b.substr(8, 4) == "WEBP") {
    return ImageFormat::kWebp;
  }
  if (absl::StartsWith(b, absl::string_view("II*\0", 4)) ||
      absl::StartsWith(b, absl::string_view("MM\0*", 4))) {
    return ImageFormat::kTiff;
  }
  return ImageFormat::kUnknown;
}

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kTiff: return "TIFF";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

ImageFormat FormatFromMimeType(absl::string_view mime_type) {
  std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(mime_type));
  if (m == "image/png") return ImageFormat::kPng;
  if (m == "image/jpeg" || m == "image/jpg" || m == "image/pjpeg") return ImageFormat::kJpeg;
  if (m == "image/gif") return ImageFormat::kGif;
  if (m == "image/bmp") return ImageFormat::kBmp;
  if (m == "image/webp") return ImageFormat::kWebp;
  if (m == "image/tiff") return ImageFormat::kTiff;
  return ImageFormat::kUnknown;
}

}  // namespace glm4v
