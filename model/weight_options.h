// How model weights are stored on a backend: the dtype of the weight matrices (Linear weights,
// embedding tables) is a load option; norm weights, biases and rows added to activations
// (position embeddings, boi/eoi) are in the backend's activation dtype (kernels/ops.h).
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dtype.h"
#include "kernels/ops.h"

namespace glm4v {

struct WeightLoadOptions {
  // kF32 or kBF16; unset = the checkpoint's own dtype where the backend computes in f32 (the
  // CPU: bf16 matrices stay bf16 and the kernels read them in place, f32/f16 ones are f32), the
  // backend's activation dtype otherwise (bf16 on CUDA).
  std::optional<DType> matrix_dtype;
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

}  // namespace glm4v
