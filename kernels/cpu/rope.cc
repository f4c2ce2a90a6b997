// GLM "original_rope": interleaved pairs over the first rotary_dim dims of every head.
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {

void ApplyRope(float* x, int64_t rows, int64_t num_heads, int head_dim, int rotary_dim,
               const int32_t* positions, double base) {
  const int pairs = rotary_dim / 2;
  std::vector<double> theta(pairs);
  for (int j = 0; j < pairs; ++j) theta[j] = std::pow(base, -2.0 * j / rotary_dim);
  ParallelFor(rows, num_heads * rotary_dim * 4 + pairs * 40, [&](int64_t r) {
    // Angles in double: position * theta loses digits in fp32 at long context.
    std::vector<float> cos_a(pairs), sin_a(pairs);
    for (int j = 0; j < pairs; ++j) {
      const double angle = positions[r] * theta[j];
      cos_a[j] = static_cast<float>(std::cos(angle));
      sin_a[j] = static_cast<float>(std::sin(angle));
    }
    float* xr = x + r * num_heads * head_dim;
    for (int64_t h = 0; h < num_heads; ++h) {
      float* xh = xr + h * head_dim;
      for (int j = 0; j < pairs; ++j) {
        const float x0 = xh[2 * j], x1 = xh[2 * j + 1];
        xh[2 * j] = x0 * cos_a[j] - x1 * sin_a[j];
        xh[2 * j + 1] = x1 * cos_a[j] + x0 * sin_a[j];
      }
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
