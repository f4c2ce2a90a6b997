#include "model/weight_options.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace glm4v {

absl::StatusOr<WeightDTypes> ResolveWeightDTypes(const WeightLoadOptions& options,
                                                 const Backend& backend) {
  WeightDTypes d;
  d.activation = backend.activation_dtype();
  d.matrix = options.matrix_dtype.value_or(d.activation);
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
