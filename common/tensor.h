// A dense n-d array: dtype, shape, row-major strides (in elements) and shared storage.
//
// Storage is host memory owned by the tensor, or borrowed memory (e.g. an mmap'd safetensors
// file) kept alive by a shared owner. Device storage plugs in behind the same type later
// (Device::kCuda); host-only code checks device() before touching data().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/dtype.h"

namespace glm4v {

enum class Device : uint8_t { kCpu, kCuda };

using Shape = std::vector<int64_t>;

std::string ShapeToString(const Shape& shape);
int64_t NumElements(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;

  // Owned, 64-byte aligned host memory. Empty() leaves it uninitialized; Zeros() clears it.
  static Tensor Empty(DType dtype, Shape shape);
  static Tensor Zeros(DType dtype, Shape shape);
  // Copies `values` into a new f32 / i32 / i64 tensor of `shape` (sizes must agree).
  static Tensor FromF32(Shape shape, absl::Span<const float> values);
  static Tensor FromI32(Shape shape, absl::Span<const int32_t> values);
  static Tensor FromI64(Shape shape, absl::Span<const int64_t> values);
  // Borrows `data` (contiguous); `owner` keeps it alive (may be null for static data).
  static Tensor Borrow(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner,
                       Device device = Device::kCpu);

  // False for a default-constructed tensor.
  bool defined() const { return defined_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Negative dims count from the end.
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  // 0 for an undefined tensor (its empty shape would otherwise read as a 1-element scalar).
  int64_t numel() const { return defined_ ? NumElements(shape_) : 0; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  bool is_contiguous() const;

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T>
  T* data() { return static_cast<T*>(data_); }
  template <typename T>
  const T* data() const { return static_cast<const T*>(data_); }

  // Same storage, new shape (contiguous tensors only; one dim may be -1).
  absl::StatusOr<Tensor> Reshape(Shape shape) const;
  // Rows [begin, end) of dim 0, sharing storage (contiguous result).
  Tensor SliceRows(int64_t begin, int64_t end) const;
  // A contiguous f32 copy (converts bf16/f16/i32/i64); CPU only.
  Tensor ToF32() const;
  // A contiguous bf16 copy of an f32/bf16 tensor; CPU only.
  Tensor ToBF16() const;
  // A deep, contiguous copy.
  Tensor Clone() const;

  std::string DebugString() const;  // "bf16[4,64]"

 private:
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
  Shape shape_;
  std::vector<int64_t> strides_;
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool defined_ = false;
};

}  // namespace glm4v
