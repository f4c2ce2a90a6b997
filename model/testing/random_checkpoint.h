// Test helper: writes a random-weight GLM-4V checkpoint for any config in the real HF layout
// (config.json, two bf16 safetensors shards and model.safetensors.index.json), and returns the
// weights as the doubles the bf16 file holds, for naive reference implementations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tensor.h"

namespace glm4v {
namespace testing {

struct NamedWeight {
  Shape shape;
  std::vector<double> values;  // exactly representable in bf16
};
using WeightMap = std::map<std::string, NamedWeight>;

// The GLM-4V tensor names and shapes for the sizes in `config_json` (a config.json object as
// text with the usual keys), filled with random values (deterministic per seed).
absl::StatusOr<WeightMap> RandomGlm4vWeights(const std::string& config_json, uint32_t seed);

// Writes config.json, model-00001-of-00002.safetensors (decoder), model-00002-of-00002
// (vision) and the index into `dir` (created if missing).
absl::Status WriteCheckpoint(const std::string& dir, const std::string& config_json,
                             const WeightMap& weights);

// Writes one bf16 safetensors file.
absl::Status WriteSafetensorsBf16(const std::string& path, const WeightMap& weights);

}  // namespace testing
}  // namespace glm4v
