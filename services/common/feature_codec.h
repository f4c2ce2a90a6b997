// ImageFeatures (the wire form of vision features) <-> f32 host tensors.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "protos/glm4v/internal/features.pb.h"

namespace glm4v {

// `features`: f32 [rows, hidden]. Sets rows, hidden_size, dtype and data (content_hash is left
// to the caller). bf16 rounds to nearest even.
absl::Status EncodeFeatures(const Tensor& features, internal::FeatureDType dtype,
                            internal::ImageFeatures* out);

// f32 [rows, hidden]; INVALID_ARGUMENT when the byte count does not match the declared shape
// and dtype, or the shape is empty.
absl::StatusOr<Tensor> DecodeFeatures(const internal::ImageFeatures& features);

}  // namespace glm4v
