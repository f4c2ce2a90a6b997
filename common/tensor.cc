#include "common/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace glm4v {
namespace {

// Methods that return a bare Tensor cannot report errors; misuse there is a programming bug.
[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "glm4v::Tensor: %s\n", what.c_str());
  std::abort();
}

std::vector<int64_t> ContiguousStrides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

// 64-byte aligned host buffer (cache line / AVX-512 friendly); never zero-sized.
std::shared_ptr<void> AllocateAligned(size_t nbytes) {
  constexpr size_t kAlign = 64;
  size_t rounded = ((nbytes + kAlign - 1) / kAlign) * kAlign;
  if (rounded == 0) rounded = kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (p == nullptr) Fail(absl::StrCat("out of memory allocating ", nbytes, " bytes"));
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

// Unaligned-safe loads: borrowed mmap data need not be aligned to the element size.
template <typename T>
T Load(const unsigned char* p, int64_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

std::string ShapeToString(const Shape& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool Tensor::is_contiguous() const { return strides_ == ContiguousStrides(shape_); }

Tensor Tensor::Empty(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) Fail(absl::StrCat("negative dimension in shape ", ShapeToString(shape)));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = Device::kCpu;
  t.strides_ = ContiguousStrides(shape);
  t.shape_ = std::move(shape);
  auto storage = AllocateAligned(static_cast<size_t>(NumElements(t.shape_)) * DTypeSize(dtype));
  t.data_ = storage.get();
  t.owner_ = std::move(storage);
  t.defined_ = true;
  return t;
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  Tensor t = Empty(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

namespace {
template <typename T>
Tensor FromValues(DType dtype, Shape shape, absl::Span<const T> values) {
  if (NumElements(shape) != static_cast<int64_t>(values.size())) {
    Fail(absl::StrCat("shape ", ShapeToString(shape), " does not hold ", values.size(), " values"));
  }
  Tensor t = Tensor::Empty(dtype, std::move(shape));
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
}  // namespace

Tensor Tensor::FromF32(Shape shape, absl::Span<const float> values) {
  return FromValues(DType::kF32, std::move(shape), values);
}
Tensor Tensor::FromI32(Shape shape, absl::Span<const int32_t> values) {
  return FromValues(DType::kI32, std::move(shape), values);
}
Tensor Tensor::FromI64(Shape shape, absl::Span<const int64_t> values) {
  return FromValues(DType::kI64, std::move(shape), values);
}

Tensor Tensor::Borrow(DType dtype, Shape shape, void* data, std::shared_ptr<const void> owner,
                      Device device) {
  for (int64_t d : shape) {
    if (d < 0) Fail(absl::StrCat("negative dimension in shape ", ShapeToString(shape)));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.strides_ = ContiguousStrides(shape);
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.defined_ = true;
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshape(Shape shape) const {
  if (!defined_) return absl::FailedPreconditionError("Reshape of an undefined tensor");
  if (!is_contiguous()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Reshape needs a contiguous tensor, got ", DebugString()));
  }
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < static_cast<int>(shape.size()); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Reshape: more than one -1 in ", ShapeToString(shape)));
      }
      infer = i;
    } else if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Reshape: negative dimension in ", ShapeToString(shape)));
    } else {
      known *= shape[i];
    }
  }
  const int64_t n = numel();
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      return absl::InvalidArgumentError(absl::StrCat("Reshape: cannot infer -1 reshaping ",
                                                     DebugString(), " to ", ShapeToString(shape)));
    }
    shape[infer] = n / known;
    known = n;
  }
  if (known != n) {
    return absl::InvalidArgumentError(absl::StrCat("Reshape: ", DebugString(), " has ", n,
                                                   " elements, ", ShapeToString(shape), " needs ",
                                                   known));
  }
  Tensor t = *this;
  t.strides_ = ContiguousStrides(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::SliceRows(int64_t begin, int64_t end) const {
  if (!defined_ || ndim() == 0) Fail("SliceRows needs a tensor with at least one dimension");
  if (!is_contiguous())
    Fail(absl::StrCat("SliceRows needs a contiguous tensor, got ", DebugString()));
  if (begin < 0 || end < begin || end > shape_[0]) {
    Fail(absl::StrCat("SliceRows [", begin, ",", end, ") out of range for ", DebugString()));
  }
  Tensor t = *this;
  t.shape_[0] = end - begin;
  const size_t offset = static_cast<size_t>(begin * strides_[0]) * DTypeSize(dtype_);
  t.data_ = static_cast<char*>(data_) + offset;
  return t;
}

Tensor Tensor::ToF32() const {
  if (!defined_) Fail("ToF32 of an undefined tensor");
  if (device_ != Device::kCpu) Fail("ToF32 needs a CPU tensor");
  if (!is_contiguous()) Fail(absl::StrCat("ToF32 needs a contiguous tensor, got ", DebugString()));
  Tensor out = Empty(DType::kF32, shape_);
  float* dst = out.data<float>();
  const auto* src = static_cast<const unsigned char*>(data_);
  const int64_t n = numel();
  switch (dtype_) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, n * sizeof(float));
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(Load<uint16_t>(src, i));
      break;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(Load<uint16_t>(src, i));
      break;
    case DType::kI32:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(Load<int32_t>(src, i));
      break;
    case DType::kI64:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(Load<int64_t>(src, i));
      break;
    case DType::kU8:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
      break;
  }
  return out;
}

Tensor Tensor::ToBF16() const {
  if (!defined_) Fail("ToBF16 of an undefined tensor");
  if (device_ != Device::kCpu) Fail("ToBF16 needs a CPU tensor");
  if (dtype_ == DType::kBF16) return Clone();
  if (dtype_ != DType::kF32) Fail(absl::StrCat("ToBF16 needs f32 or bf16, got ", DebugString()));
  if (!is_contiguous()) Fail(absl::StrCat("ToBF16 needs a contiguous tensor, got ", DebugString()));
  Tensor out = Empty(DType::kBF16, shape_);
  uint16_t* dst = out.data<uint16_t>();
  const auto* src = static_cast<const unsigned char*>(data_);
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = F32ToBF16(Load<float>(src, i));
  return out;
}

Tensor Tensor::Clone() const {
  if (!defined_) return Tensor();
  if (device_ != Device::kCpu) Fail("Clone needs a CPU tensor");
  if (!is_contiguous()) Fail(absl::StrCat("Clone needs a contiguous tensor, got ", DebugString()));
  Tensor out = Empty(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(out.data_, data_, nbytes());
  return out;
}

std::string Tensor::DebugString() const {
  if (!defined_) return "undefined";
  std::string s = absl::StrCat(std::string(DTypeName(dtype_)), ShapeToString(shape_));
  if (device_ == Device::kCuda) absl::StrAppend(&s, "@cuda");
  return s;
}

}  // namespace glm4v
