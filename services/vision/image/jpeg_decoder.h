// JPEG -> 8-bit RGB with libjpeg(-turbo), matching PIL's Image.open(...).convert("RGB"):
// default libjpeg settings (ISLOW IDCT, fancy upsampling) like PIL, grayscale
// replicated, CMYK/YCCK (Adobe, inverted) converted with PIL's cmyk2rgb formula.
// EXIF orientation is ignored, as PIL's Image.open and torchvision do.
// A premature end of data is an error (PIL raises "image file is truncated"); other
// libjpeg warnings (e.g. extraneous bytes before a marker) are tolerated like PIL.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

// INVALID_ARGUMENT for corrupt, truncated or oversized (per `limits`) data.
absl::StatusOr<RgbImage> DecodeJpeg(absl::string_view bytes, const DecodeLimits& limits);

}  // namespace glm4v
