// The ChatGLM language decoder's weights, loaded from the HF checkpoint layout
// (`transformer.embedding.*`, `transformer.encoder.*`, `transformer.output_layer.*`).
//
// All decoder weight loading happens here so tensor-parallel slicing (a (tp_rank, tp_size)
// argument selecting row/column shards of qkv, dense and the MLP) can be added in one place.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/tensor.h"
#include "kernels/ops.h"

namespace glm4v {

struct DecoderLayerWeights {
  Tensor input_norm;       // [hidden]
  Tensor qkv_weight;       // [q_size + 2 * kv_size, hidden], rows [q | k | v]
  Tensor qkv_bias;         // [q_size + 2 * kv_size] (undefined without add_qkv_bias)
  Tensor dense_weight;     // [hidden, q_size]
  Tensor dense_bias;       // [hidden] (only with add_bias_linear)
  Tensor post_norm;        // [hidden]
  Tensor h_to_4h_weight;   // [2 * ffn, hidden], rows [a | b] -> silu(a) * b
  Tensor h_to_4h_bias;     // [2 * ffn] (only with add_bias_linear)
  Tensor four_h_to_h_weight;  // [hidden, ffn]
  Tensor four_h_to_h_bias;    // [hidden] (only with add_bias_linear)
};

struct DecoderWeights {
  Tensor word_embeddings;  // [vocab, hidden]
  std::vector<DecoderLayerWeights> layers;
  Tensor final_norm;       // [hidden]
  Tensor output_layer;     // [vocab, hidden]
};

// Reads every decoder tensor as f32 (bf16 converted), checks its shape against `config`, and
// moves it to `backend`'s device.
absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend);

}  // namespace glm4v
