#include "kernels/cpu/attention_tiles.h"

#include "kernels/cpu/attention_tiles_impl.h"
#include "kernels/cpu/simd_level.h"

namespace glm4v {
namespace cpu {

void ScoreTile(const float* q, int64_t rows, int dpad, const float* kt, int64_t ldk, int64_t cols,
               float* s, int64_t lds) {
  switch (ActiveSimdLevel()) {
    case SimdLevel::kAvx512:
      return avx512::ScoreTile(q, rows, dpad, kt, ldk, cols, s, lds);
    case SimdLevel::kAvx2:
      return avx2::ScoreTile(q, rows, dpad, kt, ldk, cols, s, lds);
    case SimdLevel::kScalar:
      break;
  }
  scalar::ScoreTile(q, rows, dpad, kt, ldk, cols, s, lds);
}

void AccumulateTile(const float* p, int64_t ldp, int64_t rows, int64_t cols, const float* v,
                    int dpad, float* o) {
  switch (ActiveSimdLevel()) {
    case SimdLevel::kAvx512:
      return avx512::AccumulateTile(p, ldp, rows, cols, v, dpad, o);
    case SimdLevel::kAvx2:
      return avx2::AccumulateTile(p, ldp, rows, cols, v, dpad, o);
    case SimdLevel::kScalar:
      break;
  }
  scalar::AccumulateTile(p, ldp, rows, cols, v, dpad, o);
}

namespace scalar {

// Loops ordered so the innermost one runs over contiguous memory (the compiler may vectorize
// them for plain x86-64).
void ScoreTile(const float* q, int64_t rows, int dpad, const float* kt, int64_t ldk, int64_t cols,
               float* s, int64_t lds) {
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    for (int64_t c = 0; c < cols; ++c) sr[c] = 0.0f;
    for (int d = 0; d < dpad; ++d) {
      const float qd = q[r * dpad + d];
      const float* kd = kt + d * ldk;
      for (int64_t c = 0; c < cols; ++c) sr[c] += qd * kd[c];
    }
  }
}

void AccumulateTile(const float* p, int64_t ldp, int64_t rows, int64_t cols, const float* v,
                    int dpad, float* o) {
  for (int64_t r = 0; r < rows; ++r) {
    float* orow = o + r * dpad;
    for (int64_t c = 0; c < cols; ++c) {
      const float pc = p[r * ldp + c];
      if (pc == 0.0f) continue;  // masked keys
      const float* vc = v + c * dpad;
      for (int d = 0; d < dpad; ++d) orow[d] += pc * vc[d];
    }
  }
}

}  // namespace scalar
}  // namespace cpu
}  // namespace glm4v
