#include "model/weight_options.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace glm4v {

absl::StatusOr<WeightDTypes> ResolveWeightDTypes(const WeightLoadOptions& options,
                                                 const Backend& backend,
                                                 std::optional<DType> stored) {
  WeightDTypes d;
  d.activation = backend.activation_dtype();
  DType fallback = d.activation;
  // An f32 backend keeps bf16 checkpoints in bf16: half the memory, and its kernels widen in
  // registers (the products are the f32 ones).
  if (d.activation == DType::kF32 && stored == DType::kBF16) fallback = DType::kBF16;
  d.matrix = options.matrix_dtype.value_or(fallback);
  if (d.matrix != DType::kF32 && d.matrix != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight matrices can be stored as f32 or bf16, not ", std::string(DTypeName(d.matrix))));
  }
  return d;
}

absl::StatusOr<std::optional<DType>> ParseFloatDTypeFlag(absl::string_view flag,
                                                         absl::string_view value) {
  if (value == "auto") return std::optional<DType>();
  if (value == "f32") return std::optional<DType>(DType::kF32);
  if (value == "bf16") return std::optional<DType>(DType::kBF16);
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, ": expected auto, f32 or bf16"));
}

}  // namespace glm4v
