// Writes random-weight GLM-4V checkpoints of any size in the real HF layout — config.json,
// bf16 safetensors shards model-0000i-of-0000n.safetensors, model.safetensors.index.json — with
// every tensor name and shape of common/glm4v_weight_names.h, generating and writing each
// tensor 1 MiB at a time: memory stays constant whether the checkpoint is the tiny test model
// or the full 26 GiB GLM-4V-9B. For benchmarks and real-width tests (tools/make_checkpoint).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "common/tensor.h"

namespace glm4v {
namespace testing {

struct StreamingCheckpointOptions {
  uint32_t seed = 1;
  // A tensor never spans shards; a shard holds at least one tensor.
  int64_t max_shard_bytes = int64_t{4} << 30;
};

// Value distribution of a tensor: offset + scale * N(0, 1), as the tiny golden model's weights
// (linear weights scale 1/sqrt(fan_in), norm weights 1 + N(0, 0.2), biases N(0, 0.1),
// embeddings N(0, 1)), so activations stay in range at any width.
struct WeightInit {
  double scale = 1.0;
  double offset = 0.0;
};
WeightInit InitFor(const std::string& name, const Shape& shape);

// Writes `config_json` (a GLM-4V config.json) and random weights for it into `dir` (created if
// missing). Deterministic per seed.
absl::Status WriteRandomCheckpoint(const std::string& dir, const std::string& config_json,
                                   const StreamingCheckpointOptions& options = {});

}  // namespace testing
}  // namespace glm4v
