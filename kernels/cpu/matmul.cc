// y = x W^T + b with W stored [out, in] (HF Linear layout), via OpenBLAS.
#include <cblas.h>

#include <cstring>

#include "kernels/cpu/cpu_kernels.h"

namespace glm4v {
namespace cpu {

void Linear(const float* x, const float* w, const float* bias, int64_t m, int64_t n, int64_t k,
            float* y) {
  if (m == 0 || n == 0) return;
  float beta = 0.0f;
  if (bias != nullptr) {
    // Seed every row with the bias and let sgemm accumulate onto it.
    for (int64_t i = 0; i < m; ++i) std::memcpy(y + i * n, bias, n * sizeof(float));
    beta = 1.0f;
  }
  if (k == 0) {
    if (bias == nullptr) std::memset(y, 0, m * n * sizeof(float));
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), beta, y,
              static_cast<int>(n));
}

}  // namespace cpu
}  // namespace glm4v
