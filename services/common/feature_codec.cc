#include "services/common/feature_codec.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/dtype.h"

namespace glm4v {
namespace {

bool IsBf16(internal::FeatureDType dtype) { return dtype == internal::FEATURE_DTYPE_BFLOAT16; }

}  // namespace

absl::Status EncodeFeatures(const Tensor& features, internal::FeatureDType dtype,
                            internal::ImageFeatures* out) {
  if ((features.dtype() != DType::kF32 && features.dtype() != DType::kBF16) ||
      features.ndim() != 2 || !features.is_contiguous()) {
    return absl::InvalidArgumentError("features must be an f32 or bf16 [rows, hidden] tensor");
  }
  const int64_t n = features.numel();
  out->set_rows(static_cast<uint32_t>(features.dim(0)));
  out->set_hidden_size(static_cast<uint32_t>(features.dim(1)));
  std::string* data = out->mutable_data();
  if (features.dtype() == DType::kBF16) {
    // Kept in bf16 (a bf16 feature cache): sent as is, or widened exactly for an f32 wire.
    if (IsBf16(dtype)) {
      out->set_dtype(internal::FEATURE_DTYPE_BFLOAT16);
      data->assign(static_cast<const char*>(features.raw_data()), n * sizeof(uint16_t));
      return absl::OkStatus();
    }
    return EncodeFeatures(features.ToF32(), dtype, out);
  }
  const float* src = features.data<float>();
  if (IsBf16(dtype)) {
    out->set_dtype(internal::FEATURE_DTYPE_BFLOAT16);
    data->resize(n * sizeof(uint16_t));
    auto* dst = reinterpret_cast<uint16_t*>(data->data());
    for (int64_t i = 0; i < n; ++i) dst[i] = F32ToBF16(src[i]);
  } else {
    out->set_dtype(internal::FEATURE_DTYPE_FLOAT32);
    data->resize(n * sizeof(float));
    std::memcpy(data->data(), src, n * sizeof(float));
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> DecodeFeatures(const internal::ImageFeatures& features) {
  const int64_t rows = features.rows();
  const int64_t hidden = features.hidden_size();
  if (rows == 0 || hidden == 0) {
    return absl::InvalidArgumentError("image features have an empty shape");
  }
  if (features.dtype() != internal::FEATURE_DTYPE_UNSPECIFIED &&
      features.dtype() != internal::FEATURE_DTYPE_FLOAT32 &&
      features.dtype() != internal::FEATURE_DTYPE_BFLOAT16) {
    return absl::InvalidArgumentError(absl::StrCat("unknown feature dtype ", features.dtype()));
  }
  const bool bf16 = IsBf16(features.dtype());
  const size_t element = bf16 ? sizeof(uint16_t) : sizeof(float);
  const size_t expected = static_cast<size_t>(rows) * hidden * element;
  if (features.data().size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("image features hold ", features.data().size(),
                                                   " bytes, ", rows, "x", hidden, " needs ",
                                                   expected));
  }
  Tensor out = Tensor::Empty(DType::kF32, {rows, hidden});
  float* dst = out.data<float>();
  const int64_t n = rows * hidden;
  if (bf16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, features.data().data() + i * sizeof(uint16_t), sizeof(bits));
      dst[i] = BF16ToF32(bits);
    }
  } else {
    std::memcpy(dst, features.data().data(), expected);
  }
  return out;
}

}  // namespace glm4v
