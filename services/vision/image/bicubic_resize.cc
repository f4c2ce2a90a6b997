#include "services/vision/image/bicubic_resize.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/cpu/parallel.h"
#include "services/vision/image/resample_kernels.h"

namespace glm4v {
namespace {

constexpr double kBicubicSupport = 2.0;

// Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom), as PIL uses.
double BicubicKernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// PIL rounds half away from zero when converting taps to fixed point.
int32_t ToFixed(double w) {
  const double scaled = w * (1 << kResamplePrecisionBits);
  return static_cast<int32_t>(w < 0 ? scaled - 0.5 : scaled + 0.5);
}

}  // namespace

ResampleTaps ComputeBicubicTaps(int in_size, int out_size) {
  // Mirrors PIL's precompute_coeffs for box (0, in_size); expressions keep PIL's
  // evaluation order so the double-precision weights are identical.
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kBicubicSupport * filterscale;
  const double inv_filterscale = 1.0 / filterscale;

  ResampleTaps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.ksize, 0);
  std::vector<double> w(taps.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);  // truncation, as in PIL
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = xmax - xmin;
    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      // Distance from the output pixel's center to input pixel center x + xmin + 0.5.
      w[x] = BicubicKernel((x + xmin - center + 0.5) * inv_filterscale);
      sum += w[x];
    }
    int32_t* k = &taps.weights[static_cast<size_t>(xx) * taps.ksize];
    for (int x = 0; x < n; ++x) k[x] = ToFixed(sum != 0.0 ? w[x] / sum : w[x]);
    taps.first[xx] = xmin;
    taps.count[xx] = n;
  }
  return taps;
}

RgbImage ResizeWidth(const RgbImage& image, int width) {
  RgbImage out;
  out.width = width;
  out.height = image.height;
  out.pixels.resize(static_cast<size_t>(width) * image.height * 3);
  const ResampleTaps taps = ComputeBicubicTaps(image.width, width);
  const int bands = (image.height + kResampleBandRows - 1) / kResampleBandRows;
  cpu::ParallelFor(bands, int64_t{kResampleBandRows} * width * 3 * taps.ksize, [&](int64_t b) {
    thread_local std::vector<uint8_t> scratch;
    const int y0 = static_cast<int>(b) * kResampleBandRows;
    ResampleHorizontalBand(image.pixels.data(), image.width, y0,
                           std::min(kResampleBandRows, image.height - y0), taps,
                           out.pixels.data(), &scratch);
  });
  return out;
}

RgbImage ResizeBicubic(const RgbImage& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  // Horizontal pass first (PIL's order); skipped when the width already matches. Bands of
  // rows (horizontal) and of output rows (vertical) are spread over the CPU thread pool.
  if (height == image.height) return ResizeWidth(image, width);
  RgbImage resized_width;
  if (width != image.width) resized_width = ResizeWidth(image, width);
  const RgbImage& rows = width != image.width ? resized_width : image;
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  const ResampleTaps taps = ComputeBicubicTaps(image.height, height);
  const int bands = (height + kResampleBandRows - 1) / kResampleBandRows;
  cpu::ParallelFor(bands, int64_t{kResampleBandRows} * width * 3 * taps.ksize, [&](int64_t b) {
    const int y0 = static_cast<int>(b) * kResampleBandRows;
    ResampleVerticalRows(rows.pixels.data(), width, taps, y0,
                         std::min(height, y0 + kResampleBandRows), out.pixels.data());
  });
  return out;
}

}  // namespace glm4v
