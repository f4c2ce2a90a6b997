// Runs every case of a golden directory (golden.json + golden.safetensors + model/ + images,
// the format written by shared/tools/make_golden.py) against a backend, with the tolerances of
// shared/golden/README.md for that backend's precision.
#pragma once

#include <optional>
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

// The README's tolerance sets.
enum class GoldenTolerance {
  // max |ours - golden| <= 1e-4 x max |golden| for features and logits; greedy ids identical.
  kCpuFp32,
  // Cosine >= 0.999 per row for vision features and prompt logits; the same argmax wherever the
  // golden top-2 margin exceeds 0.05 (prompt rows, and greedy steps up to the first step whose
  // golden margin allows a different choice).
  kGpuBf16,
};

// kCpuFp32 for the CPU backend, kGpuBf16 for device backends.
GoldenTolerance GoldenToleranceFor(const Backend& backend);
const char* GoldenToleranceName(GoldenTolerance tolerance);

// Storage choices of a run (the CPU can run the GPU's bf16 weights and KV cache).
struct GoldenOptions {
  std::optional<DType> weight_dtype;  // weight matrices; unset: the backend's activation dtype
  std::optional<DType> kv_dtype;      // KV cache; unset: the backend's activation dtype
};

// Fails only if the directory cannot be read; per-case mismatches are reported in the results.
// Preprocessing and position ids are host math and use the same tolerances for every backend.
absl::StatusOr<std::vector<GoldenCaseResult>> RunGoldenCases(const std::string& golden_dir,
                                                             Backend* backend,
                                                             GoldenTolerance tolerance,
                                                             const GoldenOptions& options = {});
// With GoldenToleranceFor(*backend).
absl::StatusOr<std::vector<GoldenCaseResult>> RunGoldenCases(const std::string& golden_dir,
                                                             Backend* backend);

}  // namespace glm4v
