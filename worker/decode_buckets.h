// Batch-size buckets of captured decode steps (worker/decoder_model_runner.h): a decode batch
// of n sequences runs as the smallest bucket >= n, padded.
#pragma once

#include <vector>

#include "absl/types/span.h"

namespace glm4v::worker {

// 1, 2, 4, 8, then multiples of 8, up to the first bucket >= max_batch (so every batch of at
// most max_batch sequences has one): 3 -> {1, 2, 4}, 9 -> {1, 2, 4, 8, 16}. Empty for
// max_batch < 1.
std::vector<int> DecodeBuckets(int max_batch);

// The smallest bucket >= batch (buckets ascending), or -1 when batch exceeds them all.
int DecodeBucketFor(int batch, absl::Span<const int> buckets);

}  // namespace glm4v::worker
