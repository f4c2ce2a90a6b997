#include "services/vision/tower_encode_fn.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {

EncodeBatcher::EncodeFn MakeTowerEncodeFn(const VisionTower* tower, Backend* backend) {
  return [tower, backend](
             const std::vector<const PixelTensor*>& images) -> absl::StatusOr<std::vector<Tensor>> {
    const VisionConfig& vc = tower->config().vision;
    const int64_t n = static_cast<int64_t>(images.size());
    const int64_t per_image = static_cast<int64_t>(vc.in_channels) * vc.image_size * vc.image_size;
    Tensor pixels = Tensor::Empty(DType::kF32, {n, vc.in_channels, vc.image_size, vc.image_size});
    for (int64_t i = 0; i < n; ++i) {
      const PixelTensor& image = *images[i];
      if (static_cast<int64_t>(image.data.size()) != per_image) {
        return absl::InternalError(absl::StrCat("preprocessed image has ", image.data.size(),
                                                " values, the tower expects ", per_image));
      }
      std::memcpy(pixels.data<float>() + i * per_image, image.data.data(),
                  per_image * sizeof(float));
    }
    ASSIGN_OR_RETURN(Tensor device_out, tower->Forward(pixels));
    ASSIGN_OR_RETURN(Tensor host_out, backend->Download(device_out));
    const int64_t rows = host_out.dim(1);
    const int64_t hidden = host_out.dim(2);
    std::vector<Tensor> out;
    out.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
      Tensor features = Tensor::Empty(DType::kF32, {rows, hidden});
      std::memcpy(features.data<float>(), host_out.data<float>() + i * rows * hidden,
                  rows * hidden * sizeof(float));
      out.push_back(std::move(features));
    }
    return out;
  };
}

}  // namespace glm4v
