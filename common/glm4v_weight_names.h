// The exact tensor names and shapes of a GLM-4V checkpoint, derived from its config.
//
// The model loader and the checkpoint tests share this table, so a layout mistake shows up as a
// test failure against the real-layout tiny checkpoint rather than at load time on a GPU box.
#pragma once

#include <string>
#include <vector>

#include "common/model_config.h"
#include "common/tensor.h"

namespace glm4v {

struct WeightSpec {
  std::string name;
  Shape shape;
};

// Name prefixes, e.g. DecoderLayerPrefix(3) = "transformer.encoder.layers.3.".
std::string DecoderLayerPrefix(int layer);
std::string VisionLayerPrefix(int layer);

// Language decoder: embeddings, every layer, final norm, output layer.
std::vector<WeightSpec> DecoderWeightSpecs(const ModelConfig& config);
// Vision tower, 2x2 conv, GLU projector and boi/eoi (all under transformer.vision.).
std::vector<WeightSpec> VisionWeightSpecs(const ModelConfig& config);
// Both of the above: every tensor a complete checkpoint holds.
std::vector<WeightSpec> Glm4vWeightSpecs(const ModelConfig& config);

}  // namespace glm4v
