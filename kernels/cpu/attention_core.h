// The inner loop shared by dense and paged attention: one query vector against n keys.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace glm4v {
namespace cpu {

inline float Dot(const float* a, const float* b, int n) {
  // Four partial sums so the compiler can keep several FMAs in flight.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

// out[0:d] = softmax(scale * q . key(j), j < num_keys) weighted sum of value(j).
// `scores` is scratch of at least num_keys floats. key/value: int64_t -> const float*.
template <typename KeyFn, typename ValueFn>
void AttendOneQuery(const float* q, int head_dim, int64_t num_keys, float scale, KeyFn key,
                    ValueFn value, std::vector<float>* scores, float* out) {
  float* s = scores->data();
  float max_score = -INFINITY;
  for (int64_t j = 0; j < num_keys; ++j) {
    s[j] = Dot(q, key(j), head_dim) * scale;
    max_score = std::max(max_score, s[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < num_keys; ++j) {
    s[j] = std::exp(s[j] - max_score);
    sum += s[j];
  }
  const float inv = static_cast<float>(1.0 / sum);
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t j = 0; j < num_keys; ++j) {
    const float p = s[j] * inv;
    const float* vj = value(j);
    for (int i = 0; i < head_dim; ++i) out[i] += p * vj[i];
  }
}

}  // namespace cpu
}  // namespace glm4v
