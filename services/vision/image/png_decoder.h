// PNG -> 8-bit RGB with libpng, matching PIL's Image.open(...).convert("RGB"):
// palette expands to its RGB entries, gray replicates, alpha (and tRNS) is dropped
// without compositing, 1/2/4-bit gray scales to 0..255, 16-bit samples keep their
// high byte (PIL does the same for 16-bit RGB/RGBA; for 16-bit *gray* PIL clips the
// value to 255 instead, an edge case we deliberately do not reproduce), Adam7
// interlacing is undone, gAMA/cHRM/iCCP are ignored (PIL ignores them too).
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

// INVALID_ARGUMENT for corrupt, truncated or oversized (per `limits`) data;
// RESOURCE_EXHAUSTED if libpng cannot allocate its structures.
absl::StatusOr<RgbImage> DecodePng(absl::string_view bytes, const DecodeLimits& limits);

}  // namespace glm4v
