#include "services/vision/image/bicubic_resize.h"

#include <cmath>
#include <cstddef>

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

inline uint8_t ClipToU8(int64_t acc) {
  const int64_t v = acc >> kResamplePrecisionBits;  // arithmetic shift, like PIL
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One pass along x: in (in_w x h) -> out (taps.first.size() x h).
void ResampleHorizontal(const uint8_t* in, int in_w, int h, const ResampleTaps& taps,
                        uint8_t* out) {
  const int out_w = static_cast<int>(taps.first.size());
  for (int y = 0; y < h; ++y) {
    const uint8_t* src_row = in + static_cast<size_t>(y) * in_w * 3;
    uint8_t* dst_row = out + static_cast<size_t>(y) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      const int32_t* k = &taps.weights[static_cast<size_t>(x) * taps.ksize];
      const uint8_t* src = src_row + static_cast<size_t>(taps.first[x]) * 3;
      // Start at one half for round-to-nearest after the shift.
      int64_t r = 1 << (kResamplePrecisionBits - 1), g = r, b = r;
      for (int i = 0; i < taps.count[x]; ++i) {
        r += static_cast<int64_t>(src[3 * i + 0]) * k[i];
        g += static_cast<int64_t>(src[3 * i + 1]) * k[i];
        b += static_cast<int64_t>(src[3 * i + 2]) * k[i];
      }
      dst_row[3 * x + 0] = ClipToU8(r);
      dst_row[3 * x + 1] = ClipToU8(g);
      dst_row[3 * x + 2] = ClipToU8(b);
    }
  }
}

// One pass along y: in (w x in_h) -> out (w x taps.first.size()).
void ResampleVertical(const uint8_t* in, int w, const ResampleTaps& taps, uint8_t* out) {
  const int out_h = static_cast<int>(taps.first.size());
  const size_t stride = static_cast<size_t>(w) * 3;
  for (int y = 0; y < out_h; ++y) {
    const int32_t* k = &taps.weights[static_cast<size_t>(y) * taps.ksize];
    const uint8_t* src = in + static_cast<size_t>(taps.first[y]) * stride;
    uint8_t* dst = out + static_cast<size_t>(y) * stride;
    for (size_t xc = 0; xc < stride; ++xc) {
      int64_t acc = 1 << (kResamplePrecisionBits - 1);
      for (int i = 0; i < taps.count[y]; ++i) {
        acc += static_cast<int64_t>(src[i * stride + xc]) * k[i];
      }
      dst[xc] = ClipToU8(acc);
    }
  }
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

RgbImage ResizeBicubic(const RgbImage& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;

  // Horizontal pass first (PIL's order); skipped when the width already matches.
  RgbImage temp;
  const RgbImage* vertical_in = &image;
  if (need_horizontal) {
    RgbImage& dst = need_vertical ? temp : out;
    dst.width = width;
    dst.height = image.height;
    dst.pixels.resize(static_cast<size_t>(width) * image.height * 3);
    ResampleHorizontal(image.pixels.data(), image.width, image.height,
                       ComputeBicubicTaps(image.width, width), dst.pixels.data());
    vertical_in = &dst;
  }
  if (need_vertical) {
    ResampleVertical(vertical_in->pixels.data(), vertical_in->width,
                     ComputeBicubicTaps(image.height, height), out.pixels.data());
  }
  return out;
}

}  // namespace glm4v
