// Elementwise ops: exact GELU, SiLU-and-multiply (vector forms in row_kernels.h), add, scale.
#include <algorithm>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/row_kernels.h"

namespace glm4v {
namespace cpu {
namespace {
constexpr int64_t kChunk = 4096;  // elements per parallel work item
}  // namespace

void Gelu(float* x, int64_t n) {
  ParallelFor((n + kChunk - 1) / kChunk, kChunk * 20, [&](int64_t c) {
    const int64_t begin = c * kChunk;
    GeluRow(x + begin, std::min(n, begin + kChunk) - begin);
  });
}

void SiluAndMul(const float* x, int64_t rows, int64_t half, float* y) {
  ParallelFor(rows, half * 20, [&](int64_t r) {
    const float* a = x + r * 2 * half;
    SiluMulRow(a, a + half, half, y + r * half);
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
