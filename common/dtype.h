// Element types of tensors and the bf16/f16 <-> f32 conversions used throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/statusor.h"

namespace glm4v {

enum class DType : uint8_t { kF32, kBF16, kF16, kI32, kI64, kU8 };

size_t DTypeSize(DType dtype);
std::string_view DTypeName(DType dtype);
// Parses safetensors dtype names ("F32", "BF16", "F16", "I32", "I64", "U8").
absl::StatusOr<DType> DTypeFromSafetensorsName(std::string_view name);

inline float BF16ToF32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Round to nearest even, NaN stays NaN (as PyTorch does).
inline uint16_t F32ToBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float F16ToF32(uint16_t bits);
uint16_t F32ToF16(float f);

}  // namespace glm4v
