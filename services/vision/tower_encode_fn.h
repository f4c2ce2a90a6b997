// Adapts the vision tower to EncodeBatcher: stacks preprocessed images into one batch tensor,
// runs the tower and returns per-image host feature tensors.
#pragma once

#include "kernels/ops.h"
#include "model/vision_tower.h"
#include "services/vision/encode_batcher.h"

namespace glm4v {

// `tower` and `backend` must outlive the returned function.
EncodeBatcher::EncodeFn MakeTowerEncodeFn(const VisionTower* tower, Backend* backend);

}  // namespace glm4v
