#include "services/vision/image/preprocess.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cpu/parallel.h"
#include "services/vision/image/image_format.h"
#include "services/vision/image/jpeg_band_pipeline.h"
#include "services/vision/image/resample_kernels.h"

namespace glm4v {
namespace {

absl::Status CheckImageSize(int image_size) {
  if (image_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("image_size must be >= 1, got %d", image_size));
  }
  return absl::OkStatus();
}

// Rows already `size` wide -> the vertical pass to `size` rows and CLIP normalization in one
// pass, in bands of output rows over the CPU thread pool.
PixelTensor VerticalAndNormalize(const RgbImage& rows, int size) {
  PixelTensor out;
  out.channels = 3;
  out.height = size;
  out.width = size;
  const size_t plane = static_cast<size_t>(size) * size;
  out.data.resize(plane * 3);
  float lut[3][256];
  NormalizationLut(kClipMean, kClipStd, lut);
  const int bands = (size + kResampleBandRows - 1) / kResampleBandRows;
  if (rows.height == size) {
    cpu::ParallelFor(bands, int64_t{kResampleBandRows} * size * 3, [&](int64_t b) {
      const size_t first = static_cast<size_t>(b) * kResampleBandRows * size;
      const size_t last = std::min(plane, first + static_cast<size_t>(kResampleBandRows) * size);
      for (size_t i = first; i < last; ++i) {
        for (int c = 0; c < 3; ++c) out.data[c * plane + i] = lut[c][rows.pixels[3 * i + c]];
      }
    });
    return out;
  }
  const ResampleTaps taps = ComputeBicubicTaps(rows.height, size);
  cpu::ParallelFor(bands, int64_t{kResampleBandRows} * size * 3 * taps.ksize, [&](int64_t b) {
    const int y0 = static_cast<int>(b) * kResampleBandRows;
    ResampleVerticalRowsToPlanes(rows.pixels.data(), size, taps, y0,
                                 std::min(size, y0 + kResampleBandRows), lut, out.data.data(),
                                 plane);
  });
  return out;
}

}  // namespace

absl::StatusOr<PixelTensor> PreprocessRgb(const RgbImage& image, int image_size) {
  RETURN_IF_ERROR(CheckImageSize(image_size));
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError("preprocess: malformed RGB image");
  }
  if (image.width == image_size) return VerticalAndNormalize(image, image_size);
  return VerticalAndNormalize(ResizeWidth(image, image_size), image_size);
}

absl::StatusOr<PixelTensor> PreprocessImage(absl::string_view bytes, int image_size,
                                            const DecodeLimits& limits,
                                            absl::string_view mime_hint,
                                            const PreprocessOptions& options) {
  // Fail before paying for a decode.
  RETURN_IF_ERROR(CheckImageSize(image_size));
  if (!bytes.empty() && static_cast<int64_t>(bytes.size()) <= limits.max_input_bytes &&
      DetectImageFormat(bytes) == ImageFormat::kJpeg) {
    // Decode and horizontal pass overlapped; the full-size decode is never held.
    ASSIGN_OR_RETURN(RgbImage rows,
                     DecodeJpegResizedToWidth(bytes, image_size, limits,
                                              options.jpeg_dct_scaling ? image_size : 0));
    return VerticalAndNormalize(rows, image_size);
  }
  ASSIGN_OR_RETURN(RgbImage image, DecodeImage(bytes, limits, mime_hint));
  return PreprocessRgb(image, image_size);
}

}  // namespace glm4v
