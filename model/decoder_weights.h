// The ChatGLM language decoder's weights, loaded from the HF checkpoint layout
// (`transformer.embedding.*`, `transformer.encoder.*`, `transformer.output_layer.*`).
//
// All decoder weight loading happens here, including tensor-parallel slicing: with a shard of a
// group of size > 1 each tensor below holds only that rank's rows/columns (shapes in brackets
// are per rank; see model/tensor_parallel.h for the split), read straight from the mmap'd
// checkpoint without converting the rest.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/tensor.h"
#include "kernels/ops.h"
#include "model/tensor_parallel.h"
#include "model/weight_options.h"

namespace glm4v {

struct DecoderLayerWeights {
  // Matrices in the load's matrix dtype; norms and biases in the activation dtype.
  Tensor input_norm;       // [hidden]
  LinearWeight qkv_weight;       // [q_local + 2 * kv_local, hidden], rows [q | k | v] of local heads
  Tensor qkv_bias;         // [q_local + 2 * kv_local] (undefined without add_qkv_bias)
  LinearWeight dense_weight;     // [hidden, q_local] (input columns of the local heads)
  Tensor dense_bias;       // [hidden] (only with add_bias_linear; rank 0 only, added once)
  Tensor post_norm;        // [hidden]
  LinearWeight h_to_4h_weight;   // [2 * ffn_local, hidden], rows [a | b] -> silu(a) * b
  Tensor h_to_4h_bias;     // [2 * ffn_local] (only with add_bias_linear)
  LinearWeight four_h_to_h_weight;  // [hidden, ffn_local]
  Tensor four_h_to_h_bias;    // [hidden] (only with add_bias_linear; rank 0 only)
};

struct DecoderWeights {
  // [vocab, hidden]; sharded: [vocab_local + 1, hidden], rows [first_vocab, + vocab_local)
  // followed by one zero row that ids owned by other ranks gather (the all-reduce adds the
  // owner's row to zeros, exactly).
  Tensor word_embeddings;
  std::vector<DecoderLayerWeights> layers;
  Tensor final_norm;       // [hidden]
  LinearWeight output_layer;     // [vocab_local, hidden]
  TensorParallelShard shard;   // which slice this is (size 1: everything)
  int64_t checkpoint_bytes_read = 0;  // bytes converted from the checkpoint (tests, logs)

  // Bytes these tensors hold on their device (startup memory logs).
  int64_t HeldBytes() const;
};

// Reads this shard's part of every decoder tensor, checks the full shapes against `config`,
// and moves the slices to `backend`'s device: weight matrices (qkv, dense, h_to_4h, 4h_to_h,
// word embeddings, output layer) in options.matrix_dtype, norm weights and biases in the
// backend's activation dtype (weight_options.h). The default shard is the whole model.
absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend,
                                                  const WeightLoadOptions& options = {});
absl::StatusOr<DecoderWeights> LoadDecoderWeights(const Checkpoint& checkpoint,
                                                  const ModelConfig& config, Backend* backend,
                                                  const TensorParallelShard& shard,
                                                  const WeightLoadOptions& options = {});

}  // namespace glm4v
