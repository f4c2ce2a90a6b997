// The tiny-glm4v golden generation cases (`multimodal` and `text` of golden.json), ready to run
// through a decoder or an engine: spliced prompt, image features from the replicated vision
// tower, golden prompt logits and greedy ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/tensor.h"
#include "model/image_splice.h"

namespace glm4v::worker::tp::testing {

inline constexpr char kGoldenDir[] = "tests/data/tiny-glm4v";
inline constexpr char kModelDir[] = "tests/data/tiny-glm4v/model";
// shared/golden/README.md: max |ours - golden| <= 1e-4 * max |golden|. Never loosen.
inline constexpr double kRelativeTolerance = 1e-4;

struct GoldenCase {
  std::string kind;                 // "multimodal" or "text"
  std::vector<int32_t> input_ids;   // before splicing
  SplicedPrompt prompt;
  Tensor features;                  // f32 [rows, hidden] or undefined
  Tensor prompt_logits;             // f32 [prompt rows, vocab]
  std::vector<int32_t> greedy_ids;
};

absl::StatusOr<std::vector<GoldenCase>> LoadGoldenCases();

// OK when max |ours - golden| <= kRelativeTolerance * max |golden|, else the measured error.
absl::Status CompareLogits(const Tensor& ours, const Tensor& golden);

}  // namespace glm4v::worker::tp::testing
