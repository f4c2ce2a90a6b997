#include "kernels/fp8_e4m3.h"

#include <cmath>
#include <cstring>

namespace glm4v {

// Bit arithmetic rather than frexp / nearbyint: quantizing a 9B-parameter model encodes
// ~10^10 values at load.
uint8_t F32ToE4M3(float v) {
  if (std::isnan(v)) return 0x7f;
  uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  const uint8_t sign = (u >> 31) ? 0x80 : 0x00;
  u &= 0x7fffffffu;
  float a;
  std::memcpy(&a, &u, sizeof(a));
  if (a >= kE4M3Max) return sign | 0x7e;
  constexpr float kMinNormal = 0.015625f;  // 2^-6
  if (a < kMinNormal) {
    // Subnormal steps of 2^-9, rounded to nearest even by the f32 adder (1.5 * 2^23 trick);
    // a count of 8 is the smallest normal (bits 0x08), so the encoding is continuous.
    constexpr float kMagic = 12582912.0f;
    const int m = static_cast<int>((a * 512.0f + kMagic) - kMagic);
    return sign | static_cast<uint8_t>(m);
  }
  // Round the f32 mantissa to 3 bits, nearest even (a carry into the exponent is right).
  u += 0x7ffffu + ((u >> 20) & 1u);
  const int field = static_cast<int>(u >> 23) - 127 + 7;
  const int mant = static_cast<int>((u >> 20) & 7u);
  if (field > 15 || (field == 15 && mant == 7)) return sign | 0x7e;
  return sign | static_cast<uint8_t>((field << 3) | mant);
}

float E4M3ToF32(uint8_t bits) {
  const int field = (bits >> 3) & 15, mant = bits & 7;
  float a;
  if ((bits & 0x7f) == 0x7f) {
    a = std::nanf("");
  } else if (field == 0) {
    a = std::ldexp(static_cast<float>(mant), -9);
  } else {
    a = std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, field - 7);
  }
  return (bits & 0x80) ? -a : a;
}

}  // namespace glm4v
