// Loads a whole GLM-4V checkpoint directory (config.json + safetensors shards) onto a backend.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/ops.h"
#include "model/decoder.h"
#include "model/vision_tower.h"

namespace glm4v {

struct Glm4vModel {
  ModelConfig config;
  std::unique_ptr<VisionTower> vision;  // null when loaded without vision
  std::unique_ptr<Decoder> decoder;
};

// `weights` picks the weight-matrix storage dtype (default: the backend's activation dtype).
absl::StatusOr<Glm4vModel> LoadGlm4vModel(const std::string& model_dir, Backend* backend,
                                          bool load_vision = true,
                                          const WeightLoadOptions& weights = {});

}  // namespace glm4v
