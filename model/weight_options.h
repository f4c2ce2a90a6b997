// How model weights are stored on a backend: the dtype of the weight matrices (Linear weights,
// embedding tables) is a load option; norm weights, biases and rows added to activations
// (position embeddings, boi/eoi) are in the backend's activation dtype (kernels/ops.h).
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dtype.h"
#include "kernels/linear_weight.h"
#include "kernels/ops.h"

namespace glm4v {

struct WeightLoadOptions {
  // kF32 or kBF16; unset = the checkpoint's own dtype where the backend computes in f32 (the
  // CPU: bf16 matrices stay bf16 and the kernels read them in place, f32/f16 ones are f32), the
  // backend's activation dtype otherwise (bf16 on CUDA).
  std::optional<DType> matrix_dtype;
  // int8 / int4: every Linear weight of the decoder, the vision tower and the projector is
  // quantized at load (kernels/linear_weight.h); embeddings, norms and biases stay as they are.
  WeightFormat quantization = WeightFormat::kFloat;
  // Whether the LM head is quantized too (off: it keeps matrix_dtype, as llama.cpp's Q8_0 /
  // Q4_0 presets keep their output layer wider).
  bool quantize_output_layer = false;
  // Accuracy studies and tests: quantize, then keep the dequantized matrices as f32 (the
  // quantization error without the quantized kernels), so a quantized run can be checked against
  // the same math in float.
  bool simulate_quantization = false;
};

struct WeightDTypes {
  DType matrix;      // Linear weights, embedding tables
  DType activation;  // norm weights, biases, embeddings added to or copied into activations
};

// `stored`: the dtype the checkpoint holds its matrices in (unknown = the activation dtype).
// INVALID_ARGUMENT for a matrix dtype other than f32/bf16.
absl::StatusOr<WeightDTypes> ResolveWeightDTypes(const WeightLoadOptions& options,
                                                 const Backend& backend,
                                                 std::optional<DType> stored = std::nullopt);

// Parses a command-line dtype choice: "auto" (nullopt: the backend's default), "f32", "bf16".
// INVALID_ARGUMENT naming `flag` otherwise.
absl::StatusOr<std::optional<DType>> ParseFloatDTypeFlag(absl::string_view flag,
                                                         absl::string_view value);

// Parses --weight_dtype into `options`: auto, f32, bf16 (float matrices), int8, int4 or fp8
// (quantized at load from the checkpoint's floats). INVALID_ARGUMENT naming `flag` otherwise.
absl::Status ParseWeightDTypeFlag(absl::string_view flag, absl::string_view value,
                                  WeightLoadOptions* options);

// A host matrix read from the checkpoint, quantized as `options` ask (or kept float) and put on
// `backend` with float matrices in `matrix_dtype`.
absl::StatusOr<LinearWeight> UploadMatrix(Backend* backend, const Tensor& host,
                                          const WeightLoadOptions& options, DType matrix_dtype,
                                          bool is_output_layer = false);

}  // namespace glm4v
