// Runs every case of a golden directory (golden.json + golden.safetensors + model/ + images,
// the format written by shared/tools/make_golden.py) against our CPU implementation.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"

namespace glm4v {

struct GoldenCaseResult {
  std::string kind;
  std::string summary;  // one line with the measured errors and tolerances
  bool passed = false;
};

// Fails only if the directory cannot be read; per-case mismatches are reported in the results.
absl::StatusOr<std::vector<GoldenCaseResult>> RunGoldenCases(const std::string& golden_dir,
                                                             Backend* backend);

}  // namespace glm4v
