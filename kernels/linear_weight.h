// A Linear layer's weight matrix [out, in] as a backend stores it: a float matrix (f32, bf16,
// f16), or quantized at load time from the float checkpoint:
//   - int8: symmetric, one f32 scale per output row: w[j, t] = scale[j] * q[j, t], q in
//     [-127, 127] (int8 bytes);
//   - int4: groups of kInt4GroupSize along the input, asymmetric: w[j, t] = scale[j, g] *
//     (q[j, t] - zero[j, g]), q and zero in [0, 15], g = t / kInt4GroupSize. Packed per row in
//     blocks of 32 values in 16 bytes: byte b of a block holds value b in its low nibble and value
//     16 + b in its high nibble (one 16-byte load gives 32 values to SIMD lanes in order). Rows
//     are padded to whole blocks. GPTQ/AWQ checkpoints (int4, group 128, integer zero points)
//     map onto this by repacking their nibbles; their scales and zeros as they are;
//   - fp8: E4M3 (kernels/fp8_e4m3.h) with one f32 scale per output row: w[j, t] = scale[j] *
//     e4m3(q[j, t]), the row's largest magnitude mapped to 448 (Hopper / Ada tensor cores take
//     these bytes directly).
// Quantization is per row and per group, so a tensor-parallel rank quantizes its own slice
// and the scales go with its rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/tensor.h"

namespace glm4v {

enum class WeightFormat : uint8_t { kFloat, kInt8, kInt4, kFp8 };

constexpr int64_t kInt4GroupSize = 128;
constexpr int64_t kInt4BlockValues = 32;  // values per 16-byte packed block

// "float", "int8", "int4", "fp8".
std::string WeightFormatName(WeightFormat format);

// Bytes of one packed int4 row of `in` values.
inline int64_t Int4RowBytes(int64_t in) {
  return (in + kInt4BlockValues - 1) / kInt4BlockValues * (kInt4BlockValues / 2);
}
inline int64_t Int4Groups(int64_t in) { return (in + kInt4GroupSize - 1) / kInt4GroupSize; }

struct LinearWeight {
  LinearWeight() = default;
  // A float matrix (implicit, so a Tensor passes wherever a LinearWeight is taken).
  LinearWeight(Tensor matrix) : values(std::move(matrix)) {}  // NOLINT(runtime/explicit)

  WeightFormat format = WeightFormat::kFloat;
  // kFloat: [out, in] f32/bf16/f16. kInt8: u8 [out, in] (int8 two's complement).
  // kInt4: u8 [out, Int4RowBytes(in)]. kFp8: u8 [out, in] (e4m3 bits).
  Tensor values;
  Tensor scales;  // f32: kInt8 and kFp8 [out]; kInt4 [out, Int4Groups(in)]
  Tensor zeros;   // kInt4: u8 [out, Int4Groups(in)]
  int64_t in = 0;  // quantized formats: the input width (values' columns are bytes)

  bool defined() const { return values.defined(); }
  bool quantized() const { return format != WeightFormat::kFloat; }
  int64_t out_features() const { return values.defined() ? values.dim(0) : 0; }
  int64_t in_features() const { return quantized() ? in : (values.defined() ? values.dim(1) : 0); }
  // Bytes held: values + scales + zeros.
  size_t nbytes() const;
  // "int8[4096,4096]", or the matrix's own for float.
  std::string DebugString() const;
  // "int8", "int4", "fp8", or the float matrix's dtype ("bf16").
  std::string StorageName() const;
};

// Quantizes a host float matrix [out, in] (f32, bf16 or f16) into `format` (int8, int4, fp8) on the
// host. NaN or infinite weights are INVALID_ARGUMENT (they have no scale).
absl::StatusOr<LinearWeight> QuantizeLinearWeight(const Tensor& matrix, WeightFormat format);

// The f32 matrix [out, in] a host LinearWeight stands for (tests and references).
Tensor DequantizeLinearWeight(const LinearWeight& weight);

}  // namespace glm4v
