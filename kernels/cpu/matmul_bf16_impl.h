// Per-instruction-set forms of matmul_bf16.h (internal to the kernel).
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul_bf16.h"

namespace glm4v {
namespace cpu {

#define GLM4V_MATMUL_BF16(ns)                                                                  \
  namespace ns {                                                                             \
  void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,    \
                int64_t j_end, bool accumulate, float* y, int64_t ldy);                      \
  }

GLM4V_MATMUL_BF16(scalar)
GLM4V_MATMUL_BF16(avx2)
GLM4V_MATMUL_BF16(avx512)

#undef GLM4V_MATMUL_BF16

}  // namespace cpu
}  // namespace glm4v
