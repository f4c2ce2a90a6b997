// AVX2 + FMA forms of the attention tile kernels, compiled with a function-level target so the
// build stays plain x86-64; only called when CPUID has them (simd_level.h). Register blocks of
// 4 rows x 2 vectors (16 ymm registers): per step 2 loads and 4 broadcasts feed 8 FMAs.
#include "kernels/cpu/simd_target.h"  // first: target macros, intrinsics

#include <cstdint>

#include "kernels/cpu/attention_tiles_impl.h"

namespace glm4v {
namespace cpu {
namespace avx2 {
namespace {

constexpr int kLanes = 8;

template <int R>
GLM4V_AVX2 void ScoreRows(const float* q, int dpad, const float* kt, int64_t ldk, int64_t cols,
                            float* s, int64_t lds) {
  for (int64_t c = 0; c < cols; c += 2 * kLanes) {
    __m256 acc[R][2];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float* kc = kt + c;
    for (int d = 0; d < dpad; ++d) {
      const float* kd = kc + d * ldk;
      const __m256 k0 = _mm256_loadu_ps(kd);
      const __m256 k1 = _mm256_loadu_ps(kd + kLanes);
    #pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const __m256 b = _mm256_broadcast_ss(q + i * dpad + d);
        acc[i][0] = _mm256_fmadd_ps(b, k0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(b, k1, acc[i][1]);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
    #pragma GCC unroll 16
      for (int j = 0; j < 2; ++j) _mm256_storeu_ps(s + i * lds + c + j * kLanes, acc[i][j]);
    }
  }
}

// Rows [0, R) of o, vectors [d0 / 16, d0 / 16 + NV) of each row.
template <int R, int NV>
GLM4V_AVX2 void AccumulateRows(const float* p, int64_t ldp, int64_t cols, const float* v,
                                 int dpad, int d0, float* o) {
  __m256 acc[R][NV];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_loadu_ps(o + i * dpad + d0 + j * kLanes);
  }
  for (int64_t c = 0; c < cols; ++c) {
    const float* vc = v + c * dpad + d0;
    __m256 vv[NV];
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) vv[j] = _mm256_loadu_ps(vc + j * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m256 b = _mm256_set1_ps(p[i * ldp + c]);
    #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_fmadd_ps(b, vv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) _mm256_storeu_ps(o + i * dpad + d0 + j * kLanes, acc[i][j]);
  }
}

template <int R>
GLM4V_AVX2 void AccumulateRowBlock(const float* p, int64_t ldp, int64_t cols, const float* v,
                                     int dpad, float* o) {
  // dpad is a multiple of 16: two vectors at a time.
  for (int d0 = 0; d0 < dpad; d0 += 2 * kLanes) AccumulateRows<R, 2>(p, ldp, cols, v, dpad, d0, o);
}

}  // namespace

GLM4V_AVX2 void ScoreTile(const float* q, int64_t rows, int dpad, const float* kt, int64_t ldk,
                            int64_t cols, float* s, int64_t lds) {
  ForEachRowBlockOf4(rows, [&](auto block_rows, int64_t r) {
    ScoreRows<decltype(block_rows)::value>(q + r * dpad, dpad, kt, ldk, cols, s + r * lds, lds);
  });
}

GLM4V_AVX2 void AccumulateTile(const float* p, int64_t ldp, int64_t rows, int64_t cols,
                                 const float* v, int dpad, float* o) {
  ForEachRowBlockOf4(rows, [&](auto block_rows, int64_t r) {
    AccumulateRowBlock<decltype(block_rows)::value>(p + r * ldp, ldp, cols, v, dpad, o + r * dpad);
  });
}

}  // namespace avx2
}  // namespace cpu
}  // namespace glm4v
