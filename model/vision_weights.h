// Weights of the GLM-4V vision tower (EVA2-CLIP), its 2x2 conv and the GLU projector
// (`transformer.vision.*`), with every shape checked against the config. Weight matrices
// (Linear/conv weights) are stored in the load's matrix dtype; biases, norm weights and the
// embedding rows copied into or added to activations (cls, position, boi, eoi) in the backend's
// activation dtype (model/weight_options.h).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/tensor.h"
#include "kernels/ops.h"
#include "model/weight_options.h"

namespace glm4v {

struct VisionLayerWeights {
  LinearWeight qkv_weight;    // [3 * vh, vh]; rows [q | k | v]
  Tensor qkv_bias;            // [3 * vh]
  LinearWeight dense_weight;  // [vh, vh]
  Tensor dense_bias;          // [vh]
  Tensor ln1_weight, ln1_bias;      // input_layernorm, applied to the attention output
  LinearWeight fc1_weight;    // [inter, vh]
  Tensor fc1_bias;            // [inter]
  LinearWeight fc2_weight;    // [vh, inter]
  Tensor fc2_bias;            // [vh]
  Tensor ln2_weight, ln2_bias;      // post_attention_layernorm, applied to the MLP output
};

struct VisionWeights {
  LinearWeight patch_weight;  // conv [vh, c, p, p] flattened to [vh, c * p * p]
  Tensor patch_bias;          // [vh]
  Tensor cls_embedding;       // [1, vh]
  Tensor position_embedding;  // [num_patches + 1, vh]
  std::vector<VisionLayerWeights> layers;
  LinearWeight conv_weight;   // 2x2 conv [hidden, vh, 2, 2] flattened to [hidden, vh * 4]
  Tensor conv_bias;           // [hidden]
  LinearWeight proj_weight;   // linear_proj [hidden, hidden]
  Tensor proj_norm_weight, proj_norm_bias;  // norm1 [hidden]
  // gate_proj and dense_h_to_4h stacked [gate ; h_to_4h] -> [2 * ffn, hidden], so one GEMM
  // feeds SiluAndMul: silu(gate x) * (h_to_4h x).
  LinearWeight gate_up_weight;
  LinearWeight down_weight;   // dense_4h_to_h [hidden, ffn]
  Tensor boi, eoi;            // [1, hidden]

  // Bytes these tensors hold on their device (startup memory logs).
  int64_t HeldBytes() const;
};

absl::StatusOr<VisionWeights> LoadVisionWeights(const Checkpoint& checkpoint,
                                                const ModelConfig& config, Backend* backend,
                                                const WeightLoadOptions& options = {});

}  // namespace glm4v
