// uint8 RGB -> normalized float32 CHW, as torchvision's ToTensor + Normalize.
#pragma once

#include <array>

#include "services/vision/image/image_types.h"

namespace glm4v {

// CLIP's per-channel statistics (used by GLM-4V's image processor).
inline constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

// lut[c][v] = (v / 255 - mean[c]) / std[c], each step in float32 like torchvision.
void NormalizationLut(const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      float (*lut)[256]);

// value = (u8 / 255 - mean[c]) / std[c], each step in float32 like torchvision, so the
// result is bit-identical to the PyTorch reference for the same uint8 input.
PixelTensor Normalize(const RgbImage& image, const std::array<float, 3>& mean,
                      const std::array<float, 3>& stddev);

inline PixelTensor NormalizeClip(const RgbImage& image) {
  return Normalize(image, kClipMean, kClipStd);
}

}  // namespace glm4v
