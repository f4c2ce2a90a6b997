// Elementwise ops: exact GELU, SiLU-and-multiply, add, scale.
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {
constexpr int64_t kChunk = 4096;  // elements per parallel work item
}  // namespace

void Gelu(float* x, int64_t n) {
  ParallelFor((n + kChunk - 1) / kChunk, kChunk * 20, [&](int64_t c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) {
      x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(M_SQRT1_2)));
    }
  });
}

void SiluAndMul(const float* x, int64_t rows, int64_t half, float* y) {
  ParallelFor(rows, half * 20, [&](int64_t r) {
    const float* a = x + r * 2 * half;
    const float* b = a + half;
    float* yr = y + r * half;
    for (int64_t i = 0; i < half; ++i) yr[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
  });
}

void Add(const float* x, int64_t n, float* acc) {
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

void Scale(float scale, int64_t n, float* x) {
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

}  // namespace cpu
}  // namespace glm4v
