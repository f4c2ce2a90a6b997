// FP8 E4M3 ("e4m3fn", the OCP / NVIDIA format of Hopper and Ada tensor cores): 1 sign bit,
// 4 exponent bits (bias 7), 3 mantissa bits, no infinities, one NaN pattern per sign (0x7f),
// largest finite value 448, smallest normal 2^-6, subnormals m * 2^-9. Host-side encoding of
// fp8 weights and the reference decoding every kernel is checked against.
#pragma once

#include <cstdint>

namespace glm4v {

constexpr float kE4M3Max = 448.0f;

// Round to nearest, ties to even; |v| beyond 448 saturates to +-448 (weights are scaled so
// the largest of a row is exactly 448). NaN encodes as 0x7f (callers reject NaN first).
uint8_t F32ToE4M3(float v);

// Exact: every e4m3 value is an f32.
float E4M3ToF32(uint8_t bits);

// The 16-bit IEEE half whose value is 2^-8 times the e4m3 value: bits
// (sign << 15) | (exponent-and-mantissa << 7). Widening half to f32 (F16C, CUDA's __half) and
// multiplying by 256 gives the e4m3 value exactly, subnormals included, without a table.
inline uint16_t E4M3ToScaledHalfBits(uint8_t bits) {
  return static_cast<uint16_t>(((bits & 0x80u) << 8) | ((bits & 0x7fu) << 7));
}
constexpr float kE4M3HalfScale = 256.0f;

}  // namespace glm4v
