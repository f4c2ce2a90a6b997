// PIL-compatible bicubic resize (Image.resize(size, Image.BICUBIC) on an RGB image).
//
// Same math as Pillow's Resample.c so that results match bit for bit: separable
// cubic convolution (a = -0.5), filter support widened by the scale factor when
// shrinking (antialiasing), per-output-pixel weights normalized to sum 1 in double,
// then converted to 22-bit fixed point; horizontal pass first, then vertical, each
// rounded and clamped to uint8. A pass whose size already matches is skipped.
#pragma once

#include <cstdint>
#include <vector>

#include "services/vision/image/image_types.h"

namespace glm4v {

// Fixed-point filter taps for resampling one axis from in_size to out_size.
struct ResampleTaps {
  int ksize = 0;                // taps per output pixel (row stride of `weights`)
  std::vector<int> first;       // first input index used by output i
  std::vector<int> count;       // number of taps used by output i (<= ksize)
  std::vector<int32_t> weights; // out_size x ksize, scaled by 1 << kResamplePrecisionBits
};

// 32 bits - 8 bits of pixel - 2 bits of headroom for negative lobes / overshoot.
inline constexpr int kResamplePrecisionBits = 32 - 8 - 2;

// Requires in_size >= 1 and out_size >= 1.
ResampleTaps ComputeBicubicTaps(int in_size, int out_size);

// Requires width >= 1 and height >= 1 and a non-empty image; returns a copy when
// the size already matches. Bands of rows run on the CPU thread pool.
RgbImage ResizeBicubic(const RgbImage& image, int width, int height);

// The horizontal pass alone: `image` resized to `width` pixels wide, its own height (bands of
// rows on the CPU thread pool).
RgbImage ResizeWidth(const RgbImage& image, int width);

}  // namespace glm4v
