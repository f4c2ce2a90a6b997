// JPEG decode and the horizontal bicubic pass overlapped on two threads: the calling thread
// decodes into a ring of 16-row bands while a second thread resamples each completed band to
// the target width. The full-size decode is never held (a 12 MP photo is 36 MB of RGB; the
// ring is 8 bands), and on a 2-core machine the resize hides behind the decode.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

// The JPEG resized to `width` pixels wide (its own height), bit-identical to DecodeJpeg then
// the horizontal pass of ResizeBicubic; a JPEG already `width` wide comes back as decoded.
// With `dct_scale_to` > 0 the decode is first reduced in the DCT domain (1/2, 1/4, 1/8) as far
// as it stays at least dct_scale_to x dct_scale_to (not bit-identical: --jpeg_dct_scaling).
// The same errors as DecodeJpeg.
absl::StatusOr<RgbImage> DecodeJpegResizedToWidth(absl::string_view bytes, int width,
                                                  const DecodeLimits& limits,
                                                  int dct_scale_to = 0);

}  // namespace glm4v
