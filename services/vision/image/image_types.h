// Plain value types shared by the image decoders, the resizer and the normalizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace glm4v {

// 8-bit RGB, row-major, interleaved (HWC): pixel (x, y) channel c lives at
// pixels[(y * width + x) * 3 + c].
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  uint8_t at(int x, int y, int c) const {
    return pixels[(static_cast<size_t>(y) * width + x) * 3 + c];
  }
};

// float32 planar CHW tensor ([channels, height, width]); what the vision tower eats.
struct PixelTensor {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> data;

  float at(int c, int y, int x) const {
    return data[(static_cast<size_t>(c) * height + y) * width + x];
  }
};

// Guards against decompression bombs and oversized requests. Checked from the
// image header, before any pixel memory is allocated.
struct DecodeLimits {
  int64_t max_pixels = 50'000'000;      // width * height
  int64_t max_input_bytes = 64 << 20;   // encoded size
  int max_jpeg_scans = 256;             // progressive JPEGs with endless scans burn CPU
};

}  // namespace glm4v
