// RMSNorm (decoder) and LayerNorm (vision tower, projector); statistics in double.
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps,
             float* y) {
  ParallelFor(rows, 4 * dim, [&](int64_t r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum_sq = 0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum_sq / dim + eps));
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * weight[i];
  });
}

void LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim,
               float eps, float* y) {
  ParallelFor(rows, 6 * dim, [&](int64_t r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / dim;
    double var = 0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const double inv = 1.0 / std::sqrt(var / dim + eps);
    for (int64_t i = 0; i < dim; ++i) {
      yr[i] = static_cast<float>((xr[i] - mean) * inv) * weight[i] + bias[i];
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
