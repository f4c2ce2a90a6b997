#include "kernels/cpu/matmul_bf16.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/matmul_bf16_impl.h"
#include "kernels/cpu/simd_level.h"

namespace glm4v {
namespace cpu {

void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
              int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  switch (ActiveSimdLevel()) {
    case SimdLevel::kAvx512:
      return avx512::MatmulBf16(x, m, w, k, j_begin, j_end, accumulate, y, ldy);
    case SimdLevel::kAvx2:
      return avx2::MatmulBf16(x, m, w, k, j_begin, j_end, accumulate, y, ldy);
    case SimdLevel::kScalar:
      break;
  }
  scalar::MatmulBf16(x, m, w, k, j_begin, j_end, accumulate, y, ldy);
}

bool CpuHasBf16Dot() {
#if defined(__x86_64__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has && ActiveSimdLevel() == SimdLevel::kAvx512;
#else
  return false;
#endif
}

namespace {
std::atomic<bool>& Bf16Activations() {
  static std::atomic<bool> enabled{[] {
    const char* env = std::getenv("GLM4V_CPU_MATMUL");
    return env != nullptr && std::strcmp(env, "bf16") == 0;
  }()};
  return enabled;
}
}  // namespace

bool Bf16ActivationMatmulEnabled() { return Bf16Activations().load(std::memory_order_relaxed); }

void SetBf16ActivationMatmul(bool enabled) { Bf16Activations().store(enabled); }

namespace scalar {

void MatmulBf16(const float* x, int64_t m, const uint16_t* w, int64_t k, int64_t j_begin,
              int64_t j_end, bool accumulate, float* y, int64_t ldy) {
  for (int64_t j = j_begin; j < j_end; ++j) {
    const uint16_t* wj = w + j * k;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t kk = 0;
      auto widen = [](uint16_t bits) {
        const uint32_t u = static_cast<uint32_t>(bits) << 16;
        float f;
        std::memcpy(&f, &u, sizeof(f));
        return f;
      };
      for (; kk + 4 <= k; kk += 4) {
        s0 += xi[kk] * widen(wj[kk]);
        s1 += xi[kk + 1] * widen(wj[kk + 1]);
        s2 += xi[kk + 2] * widen(wj[kk + 2]);
        s3 += xi[kk + 3] * widen(wj[kk + 3]);
      }
      for (; kk < k; ++kk) s0 += xi[kk] * widen(wj[kk]);
      const float sum = (s0 + s1) + (s2 + s3);
      float& out = y[i * ldy + j];
      out = accumulate ? out + sum : sum;
    }
  }
}

}  // namespace scalar
}  // namespace cpu
}  // namespace glm4v
