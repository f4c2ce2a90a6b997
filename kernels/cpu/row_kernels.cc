#include "kernels/cpu/row_kernels.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/row_kernels_impl.h"
#include "kernels/cpu/simd_level.h"

namespace glm4v {
namespace cpu {

#define GLM4V_DISPATCH(call)                \
  switch (ActiveSimdLevel()) {              \
    case SimdLevel::kAvx512:                \
      return avx512::call;                  \
    case SimdLevel::kAvx2:                  \
      return avx2::call;                    \
    case SimdLevel::kScalar:                \
      break;                                \
  }                                         \
  return scalar::call;

float MaxRow(const float* row, int64_t n) { GLM4V_DISPATCH(MaxRow(row, n)) }

float BlockMaxRow(const float* row, int64_t n, float* block_max) {
  GLM4V_DISPATCH(BlockMaxRow(row, n, block_max))
}

int64_t ArgmaxRow(const float* row, int64_t n) { GLM4V_DISPATCH(ArgmaxRow(row, n)) }

double SumExpRow(const float* row, int64_t n, float scale, float shift) {
  GLM4V_DISPATCH(SumExpRow(row, n, scale, shift))
}

void ExpRow(const float* row, int64_t n, float scale, float shift, float* out) {
  GLM4V_DISPATCH(ExpRow(row, n, scale, shift, out))
}

int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end, float threshold,
                       int32_t* out) {
  if (end <= begin) return 0;
  GLM4V_DISPATCH(CollectAtLeast(row, begin, end, threshold, out))
}

void GeluRow(float* x, int64_t n) { GLM4V_DISPATCH(GeluRow(x, n)) }

void SiluMulRow(const float* a, const float* b, int64_t n, float* y) {
  GLM4V_DISPATCH(SiluMulRow(a, b, n, y))
}

#undef GLM4V_DISPATCH

namespace scalar {

float MaxRow(const float* row, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > max) max = row[i];
  }
  return max;
}

float BlockMaxRow(const float* row, int64_t n, float* block_max) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t begin = 0, b = 0; begin < n; begin += kMaxBlock, ++b) {
    block_max[b] = MaxRow(row + begin, n - begin < kMaxBlock ? n - begin : kMaxBlock);
    if (block_max[b] > max) max = block_max[b];
  }
  return max;
}

int64_t ArgmaxRow(const float* row, int64_t n) {
  int64_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    if (row[i] > best_value) {
      best_value = row[i];
      best = i;
    }
  }
  return best;
}

// std::exp of the argument the SIMD forms evaluate: row * scale - shift, each step rounded (with
// scale 1, exactly row - shift).
inline float ExpTerm(float x, float scale, float shift) { return std::exp(x * scale - shift); }

double SumExpRow(const float* row, int64_t n, float scale, float shift) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += ExpTerm(row[i], scale, shift);
  return total;
}

void ExpRow(const float* row, int64_t n, float scale, float shift, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = ExpTerm(row[i], scale, shift);
}

int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end, float threshold,
                       int32_t* out) {
  int64_t count = 0;
  for (int64_t i = begin; i < end; ++i) {
    if (row[i] >= threshold) out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

void GeluRow(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kSqrtHalf));
}

void SiluMulRow(const float* a, const float* b, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

}  // namespace scalar
}  // namespace cpu
}  // namespace glm4v
