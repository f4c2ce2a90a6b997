// Runs every case of a golden directory (golden.json + golden.safetensors + model/ + images,
// the format written by shared/tools/make_golden.py) against a backend, with the tolerances of
// shared/golden/README.md for that backend's precision.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/linear_weight.h"
#include "kernels/ops.h"

namespace glm4v {

struct GoldenCaseResult {
  std::string kind;
  std::string summary;  // one line with the measured errors and tolerances
  bool passed = false;
  // Row-cosine tolerances (GPU bf16, quantized weights): the parts of `passed`. The cosine is
  // the smallest over the gated rows (vision features, prompt logits); 1 for other cases.
  double min_row_cosine = 1.0;
  bool argmax_and_greedy_ok = true;  // argmax where the golden margin forbids another choice
};

// The README's tolerance sets.
enum class GoldenTolerance {
  // max |ours - golden| <= 1e-4 x max |golden| for features and logits; greedy ids identical.
  kCpuFp32,
  // Cosine >= 0.999 per row for vision features and prompt logits; the same argmax wherever the
  // golden top-2 margin exceeds 0.05 (prompt rows, and greedy steps up to the first step whose
  // golden margin allows a different choice).
  kGpuBf16,
  // Quantized weights (issue #16): as kGpuBf16 with min row cosine 0.9999 (int8) or 0.995
  // (int4) against the float64 references.
  kInt8,
  kInt4,
};

// kCpuFp32 for the CPU backend, kGpuBf16 for device backends.
GoldenTolerance GoldenToleranceFor(const Backend& backend);
const char* GoldenToleranceName(GoldenTolerance tolerance);

// Storage choices of a run (the CPU can run the GPU's bf16 weights and KV cache).
struct GoldenOptions {
  std::optional<DType> weight_dtype;  // weight matrices; unset: the backend's activation dtype
  WeightFormat quantization = WeightFormat::kFloat;  // int8 / int4: quantized at load
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
