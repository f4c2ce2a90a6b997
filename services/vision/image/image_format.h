// Image container detection from magic bytes (never from file names or MIME types).
#pragma once

#include "absl/strings/string_view.h"

namespace glm4v {

enum class ImageFormat { kUnknown, kPng, kJpeg, kGif, kBmp, kWebp, kTiff };

// Looks only at the leading signature bytes.
ImageFormat DetectImageFormat(absl::string_view bytes);

// "PNG", "JPEG", ... "unknown".
const char* ImageFormatName(ImageFormat format);

// Maps "image/png", "image/jpeg", ... to a format; kUnknown for anything else.
ImageFormat FormatFromMimeType(absl::string_view mime_type);

}  // namespace glm4v
