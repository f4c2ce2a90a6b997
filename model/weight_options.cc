#include "model/weight_options.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

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

absl::Status ParseWeightDTypeFlag(absl::string_view flag, absl::string_view value,
                                  WeightLoadOptions* options) {
  if (value == "int8" || value == "int4" || value == "fp8") {
    options->matrix_dtype.reset();
    options->quantization = value == "int8"   ? WeightFormat::kInt8
                            : value == "int4" ? WeightFormat::kInt4
                                              : WeightFormat::kFp8;
    return absl::OkStatus();
  }
  auto dtype = ParseFloatDTypeFlag(flag, value);
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", value, ": expected auto, f32, bf16, int8, int4 or fp8"));
  }
  options->matrix_dtype = *dtype;
  options->quantization = WeightFormat::kFloat;
  return absl::OkStatus();
}

absl::StatusOr<LinearWeight> UploadMatrix(Backend* backend, const Tensor& host,
                                          const WeightLoadOptions& options, DType matrix_dtype,
                                          bool is_output_layer) {
  const bool quantize = options.quantization != WeightFormat::kFloat &&
                        (!is_output_layer || options.quantize_output_layer);
  if (!quantize) return backend->UploadLinearWeight(LinearWeight(host), matrix_dtype);
  ASSIGN_OR_RETURN(const LinearWeight q, QuantizeLinearWeight(host, options.quantization));
  if (options.simulate_quantization) {
    return backend->UploadLinearWeight(LinearWeight(DequantizeLinearWeight(q)), DType::kF32);
  }
  return backend->UploadLinearWeight(q, matrix_dtype);
}

}  // namespace glm4v
