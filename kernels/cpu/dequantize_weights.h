// Rows of an int8 / int4 weight (kernels/linear_weight.h) widened to bf16 panels, for the
// opt-in bf16-activation products (GLM4V_CPU_MATMUL=bf16) of prefill and vision sizes: there the
// weights are read many times per call, so a dequantized panel feeding oneDNN's bf16 matmul
// (400+ GFLOP/s here) beats dequantizing in registers (160-210 GFLOP/s). Each value is
// scale * q (int8) or scale * (q - zero) (int4) rounded once to bf16.
#pragma once

#include <cstdint>

#include "kernels/linear_weight.h"

namespace glm4v {
namespace cpu {

// out[(r - r_begin) * k + t] = bf16(weight[r, t]) for r in [r_begin, r_end), t < k.
void DequantizeRowsToBf16(const LinearWeight& w, int64_t r_begin, int64_t r_end, uint16_t* out);

}  // namespace cpu
}  // namespace glm4v
