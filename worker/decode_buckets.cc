#include "worker/decode_buckets.h"

namespace glm4v::worker {

std::vector<int> DecodeBuckets(int max_batch) {
  std::vector<int> out;
  if (max_batch < 1) return out;
  for (int b : {1, 2, 4, 8}) {
    if (out.empty() || out.back() < max_batch) out.push_back(b);
  }
  for (int b = 16; out.back() < max_batch; b += 8) out.push_back(b);
  return out;
}

int DecodeBucketFor(int batch, absl::Span<const int> buckets) {
  for (int b : buckets) {
    if (b >= batch) return b;
  }
  return -1;
}

}  // namespace glm4v::worker
