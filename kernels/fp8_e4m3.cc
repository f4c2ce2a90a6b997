#include "kernels/fp8_e4m3.h"

#include <cmath>

namespace glm4v {

uint8_t F32ToE4M3(float v) {
  if (std::isnan(v)) return 0x7f;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  const float a = std::fabs(v);
  if (a >= kE4M3Max) return sign | 0x7e;
  constexpr float kMinNormal = 0.015625f;  // 2^-6
  if (a < kMinNormal) {
    // Subnormal steps of 2^-9; a count of 8 is the smallest normal (bits 0x08), so the
    // encoding is continuous.
    const int m = static_cast<int>(std::nearbyint(a * 512.0f));
    return sign | static_cast<uint8_t>(m);
  }
  int e = 0;
  const float frac = std::frexp(a, &e);  // a = frac * 2^e, frac in [0.5, 1)
  int exponent = e - 1;                  // a = (2 * frac) * 2^exponent
  int mant = static_cast<int>(std::nearbyint((2.0f * frac - 1.0f) * 8.0f));
  if (mant == 8) {
    mant = 0;
    ++exponent;
  }
  const int field = exponent + 7;
  if (field > 15 || (field == 15 && mant > 6)) return sign | 0x7e;
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
