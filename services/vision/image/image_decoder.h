// Format-dispatching decoder: bytes -> 8-bit RGB.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

// Detects the format from the bytes. `mime_hint` (e.g. a request's content type) is
// advisory only: when it disagrees with the bytes, the bytes win; it is used to make
// the error clearer when the bytes are not a supported image.
// Errors are INVALID_ARGUMENT (empty, too big, unknown/unsupported format, corrupt,
// truncated, over `limits`) unless libraries run out of memory.
absl::StatusOr<RgbImage> DecodeImage(absl::string_view bytes, const DecodeLimits& limits,
                                     absl::string_view mime_hint = "");

}  // namespace glm4v
