// JPEG -> 8-bit RGB with libjpeg(-turbo), matching PIL's Image.open(...).convert("RGB"):
// default libjpeg settings (ISLOW IDCT, fancy upsampling) like PIL, grayscale
// replicated, CMYK/YCCK (Adobe, inverted) converted with PIL's cmyk2rgb formula.
// EXIF orientation is ignored, as PIL's Image.open and torchvision do.
// A premature end of data is an error (PIL raises "image file is truncated"); other
// libjpeg warnings (e.g. extraneous bytes before a marker) are tolerated like PIL.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

// INVALID_ARGUMENT for corrupt, truncated or oversized (per `limits`) data.
absl::StatusOr<RgbImage> DecodeJpeg(absl::string_view bytes, const DecodeLimits& limits);

// Where a streaming decode puts its rows (interleaved RGB, width * 3 bytes each), so a consumer
// can work on rows while later ones are still being decoded. Called on the decoding thread;
// the methods must return normally (libjpeg errors unwind with longjmp around them).
class JpegRowSink {
 public:
  virtual ~JpegRowSink() = default;
  // Once, after the header passed the limits and before any row.
  virtual void Start(int width, int height) = 0;
  // Where row y goes (rows come in order; may block until the consumer has room).
  virtual uint8_t* RowBuffer(int y) = 0;
  // Rows [0, end) are complete.
  virtual void RowsDone(int end) = 0;
};

// Optional reduced-size decode in the DCT domain (libjpeg's scale_num / scale_denom): the
// smallest scale of 1/2, 1/4 or 1/8 whose output is still at least min_width x min_height.
// Faster, but not Pillow's pixels (Pillow decodes at full size before resizing); 0 = off.
struct JpegDctScaling {
  int min_width = 0;
  int min_height = 0;
};

// Decodes into `sink` (Start gets the decoded, possibly DCT-scaled, size); the same errors as
// DecodeJpeg. On an error the sink may have seen Start and some rows.
absl::Status DecodeJpegToSink(absl::string_view bytes, const DecodeLimits& limits,
                              JpegRowSink* sink, const JpegDctScaling& scaling = {});

}  // namespace glm4v
