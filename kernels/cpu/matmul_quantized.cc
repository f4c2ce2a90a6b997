#include "kernels/cpu/matmul_quantized.h"

#include <algorithm>

#include "kernels/cpu/matmul_quantized_impl.h"
#include "kernels/cpu/simd_level.h"
#include "kernels/linear_weight.h"

namespace glm4v {
namespace cpu {

void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale, int64_t k,
                int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  switch (ActiveSimdLevel()) {
    case SimdLevel::kAvx512:
      return avx512::MatmulInt8(x, m, q, scale, k, j_begin, j_end, accumulate, y, ldy);
    case SimdLevel::kAvx2:
      return avx2::MatmulInt8(x, m, q, scale, k, j_begin, j_end, accumulate, y, ldy);
    case SimdLevel::kScalar:
      break;
  }
  scalar::MatmulInt8(x, m, q, scale, k, j_begin, j_end, accumulate, y, ldy);
}

void MatmulInt4(const float* x, int64_t m, const uint8_t* packed, const float* scales,
                const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end, bool accumulate,
                float* y, int64_t ldy) {
  switch (ActiveSimdLevel()) {
    case SimdLevel::kAvx512:
      return avx512::MatmulInt4(x, m, packed, scales, zeros, k, j_begin, j_end, accumulate, y,
                                ldy);
    case SimdLevel::kAvx2:
      return avx2::MatmulInt4(x, m, packed, scales, zeros, k, j_begin, j_end, accumulate, y, ldy);
    case SimdLevel::kScalar:
      break;
  }
  scalar::MatmulInt4(x, m, packed, scales, zeros, k, j_begin, j_end, accumulate, y, ldy);
}

namespace scalar {

void MatmulInt8(const float* x, int64_t m, const int8_t* q, const float* scale, int64_t k,
                int64_t j_begin, int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  for (int64_t j = j_begin; j < j_end; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      const float v = scale[j] * Int8Dot(x + i * k, q + j * k, 0, k);
      float& out = y[i * ldy + j];
      out = accumulate ? out + v : v;
    }
  }
}

void MatmulInt4(const float* x, int64_t m, const uint8_t* packed, const float* scales,
                const uint8_t* zeros, int64_t k, int64_t j_begin, int64_t j_end, bool accumulate,
                float* y, int64_t ldy) {
  const int64_t groups = Int4Groups(k), row_bytes = Int4RowBytes(k);
  for (int64_t j = j_begin; j < j_end; ++j) {
    const uint8_t* row = packed + j * row_bytes;
    for (int64_t i = 0; i < m; ++i) {
      float v = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t t0 = g * kInt4GroupSize, t1 = std::min(k, t0 + kInt4GroupSize);
        v += Int4GroupDot(x + i * k, row, scales[j * groups + g], zeros[j * groups + g], t0, t1);
      }
      float& out = y[i * ldy + j];
      out = accumulate ? out + v : v;
    }
  }
}

}  // namespace scalar
}  // namespace cpu
}  // namespace glm4v
