#include "model/weight_slices.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/dtype.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

// Converts `n` consecutive elements of a float dtype to f32.
void ConvertToF32(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      return;
    }
    default: {  // kF16 (View() admits only float dtypes)
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
  }
}

// Converts `n` consecutive elements of a float dtype to `dst_dtype` (kF32 or kBF16) at `dst`.
void Convert(const void* src, DType dtype, int64_t n, void* dst, DType dst_dtype) {
  if (dst_dtype == DType::kF32) {
    ConvertToF32(src, dtype, n, static_cast<float*>(dst));
    return;
  }
  uint16_t* out = static_cast<uint16_t*>(dst);
  if (dtype == DType::kBF16) {
    std::memcpy(out, src, n * sizeof(uint16_t));
    return;
  }
  float buffer[1024];
  const char* s = static_cast<const char*>(src);
  const size_t elem = DTypeSize(dtype);
  for (int64_t begin = 0; begin < n; begin += 1024) {
    const int64_t m = std::min<int64_t>(1024, n - begin);
    ConvertToF32(s + begin * elem, dtype, m, buffer);
    for (int64_t i = 0; i < m; ++i) out[begin + i] = F32ToBF16(buffer[i]);
  }
}

absl::Status CheckOutputDType(DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights can be read as f32 or bf16, not ", std::string(DTypeName(dtype))));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> SliceReader::View(const std::string& name, const Shape& full_shape) const {
  ASSIGN_OR_RETURN(Tensor t, checkpoint_.Get(name));  // zero-copy mmap view
  if (t.shape() != full_shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": expected shape ",
                                                   ShapeToString(full_shape), ", got ",
                                                   ShapeToString(t.shape())));
  }
  if (t.dtype() != DType::kF32 && t.dtype() != DType::kBF16 && t.dtype() != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": expected a float dtype, got ",
                                                   std::string(DTypeName(t.dtype()))));
  }
  return t;
}

absl::StatusOr<Tensor> SliceReader::Rows(const std::string& name, const Shape& full_shape,
                                         const std::vector<IndexRange>& ranges, DType dtype) {
  RETURN_IF_ERROR(CheckOutputDType(dtype));
  ASSIGN_OR_RETURN(Tensor t, View(name, full_shape));
  const int64_t row_elems = t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
  int64_t rows = 0;
  for (const IndexRange& r : ranges) {
    if (r.first < 0 || r.second < r.first || r.second > t.dim(0)) {
      return absl::OutOfRangeError(absl::StrCat("tensor \"", name, "\": rows [", r.first, ", ",
                                                r.second, ") outside ", t.DebugString()));
    }
    rows += r.second - r.first;
  }
  // Ranges that follow each other (an unsharded [q | k | v] or [gate | up]) are one run.
  bool one_run = !ranges.empty();
  for (size_t i = 1; i < ranges.size(); ++i) one_run &= ranges[i].first == ranges[i - 1].second;
  if (one_run && t.dtype() == dtype) {
    // One run of rows in the stored dtype: a view of the mapped file, no copy (on the CPU the
    // weights are then read in place; a device backend copies them once on upload).
    bytes_read_ += rows * row_elems * static_cast<int64_t>(DTypeSize(dtype));
    return t.SliceRows(ranges.front().first, ranges.back().second);
  }
  Shape shape = full_shape;
  shape[0] = rows;
  Tensor out = Tensor::Empty(dtype, shape);
  const size_t elem = DTypeSize(t.dtype()), out_elem = DTypeSize(dtype);
  char* dst = static_cast<char*>(out.raw_data());
  for (const IndexRange& r : ranges) {
    const int64_t n = (r.second - r.first) * row_elems;
    Convert(static_cast<const char*>(t.raw_data()) + r.first * row_elems * elem, t.dtype(), n,
            dst, dtype);
    dst += n * out_elem;
    bytes_read_ += n * static_cast<int64_t>(elem);
  }
  return out;
}

absl::StatusOr<Tensor> SliceReader::Columns(const std::string& name, const Shape& full_shape,
                                            IndexRange columns, DType dtype) {
  RETURN_IF_ERROR(CheckOutputDType(dtype));
  ASSIGN_OR_RETURN(Tensor t, View(name, full_shape));
  if (t.ndim() != 2 || columns.first < 0 || columns.second < columns.first ||
      columns.second > t.dim(1)) {
    return absl::OutOfRangeError(absl::StrCat("tensor \"", name, "\": columns [", columns.first,
                                              ", ", columns.second, ") outside ",
                                              t.DebugString()));
  }
  const int64_t rows = t.dim(0), cols = t.dim(1), n = columns.second - columns.first;
  if (n == cols && t.dtype() == dtype) {
    bytes_read_ += rows * n * static_cast<int64_t>(DTypeSize(dtype));
    return t;  // every column in the stored dtype: the view of the file, as in Rows
  }
  Tensor out = Tensor::Empty(dtype, {rows, n});
  const size_t elem = DTypeSize(t.dtype()), out_elem = DTypeSize(dtype);
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t r = 0; r < rows; ++r) {
    Convert(src + (r * cols + columns.first) * elem, t.dtype(), n, dst + r * n * out_elem, dtype);
  }
  bytes_read_ += rows * n * static_cast<int64_t>(elem);
  return out;
}

absl::StatusOr<Tensor> SliceReader::All(const std::string& name, const Shape& full_shape,
                                        DType dtype) {
  if (full_shape.empty()) return absl::InvalidArgumentError("scalar tensors are not sliced");
  return Rows(name, full_shape, {{0, full_shape[0]}}, dtype);
}

}  // namespace glm4v
