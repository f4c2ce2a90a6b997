// Dense softmax attention (vision tower; any batch of equal-length sequences), GQA-aware.
#include <vector>

#include "kernels/cpu/attention_core.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {
constexpr int64_t kQueryBlock = 16;  // query rows per parallel work item
}  // namespace

void Attention(const float* q, const float* k, const float* v, int64_t batch, int64_t len,
               int num_heads, int num_kv_heads, int head_dim, bool causal, float scale,
               float* out) {
  const int64_t q_stride = static_cast<int64_t>(num_heads) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int heads_per_group = num_heads / num_kv_heads;
  const int64_t blocks = (len + kQueryBlock - 1) / kQueryBlock;
  ParallelFor(batch * num_heads * blocks, kQueryBlock * len * head_dim * 4, [&](int64_t item) {
    const int64_t blk = item % blocks;
    const int64_t h = (item / blocks) % num_heads;
    const int64_t b = item / (blocks * num_heads);
    const int64_t g = h / heads_per_group;
    const float* kb = k + b * len * kv_stride + g * head_dim;
    const float* vb = v + b * len * kv_stride + g * head_dim;
    std::vector<float> scores(len);
    const int64_t end = std::min(len, (blk + 1) * kQueryBlock);
    for (int64_t i = blk * kQueryBlock; i < end; ++i) {
      const int64_t row = b * len + i;
      AttendOneQuery(
          q + row * q_stride + h * head_dim, head_dim, causal ? i + 1 : len, scale,
          [&](int64_t j) { return kb + j * kv_stride; },
          [&](int64_t j) { return vb + j * kv_stride; }, &scores,
          out + row * q_stride + h * head_dim);
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
