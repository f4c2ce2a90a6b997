// GLM-4V vision tower: patch embedding + CLS + position embedding, post-sublayer-norm EVA2-CLIP
// layers, 2x2 stride-2 conv over the patch grid, GLU projector, boi/eoi rows, / scaling_factor.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/tensor.h"
#include "kernels/ops.h"
#include "model/vision_weights.h"

namespace glm4v {

class VisionTower {
 public:
  static absl::StatusOr<std::unique_ptr<VisionTower>> Load(const Checkpoint& checkpoint,
                                                           const ModelConfig& config,
                                                           Backend* backend,
                                                           const WeightLoadOptions& options = {});
  VisionTower(const ModelConfig& config, VisionWeights weights, Backend* backend);

  // pixels: host f32 [images, in_channels, image_size, image_size] (normalized); uploaded in the
  // backend's activation dtype. Returns [images, feature_rows, hidden] in the activation dtype
  // (f32 on the CPU, bf16 on CUDA) on the backend's device — Backend::Download gives host f32:
  // per image the boi row, merged_grid^2 patch rows, the eoi row, already divided by
  // scaling_factor. A wrongly shaped or typed input is INVALID_ARGUMENT.
  absl::StatusOr<Tensor> Forward(const Tensor& pixels) const;

  const ModelConfig& config() const { return config_; }
  const VisionWeights& weights() const { return weights_; }

 private:
  // x [images * (patches + 1), vh] through one post-sublayer-norm layer, in place.
  absl::Status RunLayer(const VisionLayerWeights& layer, int images, Tensor* x) const;
  // Patch rows (CLS dropped) [images * patches, vh] -> projected [images * merged^2, hidden].
  absl::StatusOr<Tensor> MergeAndProject(const Tensor& patches, int images) const;

  ModelConfig config_;
  VisionWeights weights_;
  Backend* backend_;
};

}  // namespace glm4v
