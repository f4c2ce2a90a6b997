#include "services/vision/image/clip_normalize.h"

#include <cstddef>

namespace glm4v {

void NormalizationLut(const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      float (*lut)[256]) {
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float scaled = static_cast<float>(v) / 255.0f;
      lut[c][v] = (scaled - mean[c]) / stddev[c];
    }
  }
}

PixelTensor Normalize(const RgbImage& image, const std::array<float, 3>& mean,
                      const std::array<float, 3>& stddev) {
  PixelTensor out;
  out.channels = 3;
  out.height = image.height;
  out.width = image.width;
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  out.data.resize(plane * 3);
  // 256-entry tables: the same float ops per value, done once.
  float lut[3][256];
  NormalizationLut(mean, stddev, lut);
  for (int c = 0; c < 3; ++c) {
    float* dst = out.data.data() + c * plane;
    const uint8_t* src = image.pixels.data() + c;
    for (size_t i = 0; i < plane; ++i) dst[i] = lut[c][src[3 * i]];
  }
  return out;
}

}  // namespace glm4v
