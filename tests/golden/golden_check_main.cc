// bazel run //tests:golden_check -- --golden_dir=/abs/path/to/golden/tiny-glm4v [--backend=cuda]
// Prints one line per golden case with the measured error; exits non-zero on any mismatch.
// --backend=cpu checks the README's CPU fp32 tolerances, --backend=cuda its GPU bf16 ones; a
// bf16 --weight_dtype or --kv_dtype also selects the GPU bf16 tolerances, --weight_dtype=int8 /
// int4 the quantized ones (row cosine >= 0.9999 / 0.995).
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "kernels/backends.h"
#include "model/weight_options.h"
#include "tests/golden/golden_runner.h"

ABSL_FLAG(std::string, golden_dir, "", "golden directory (golden.json, golden.safetensors, model/)");
ABSL_FLAG(std::string, backend, "cpu", "compute backend: cpu or cuda");
ABSL_FLAG(std::string, weight_dtype, "auto",
          "weight matrix storage: auto (the checkpoint's dtype on the CPU, bf16 on CUDA), f32, "
          "bf16, or int8 / int4 / fp8 (quantized at load)");
ABSL_FLAG(std::string, kv_dtype, "auto",
          "KV cache dtype: auto (the backend's activation dtype), f32 or bf16");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_golden_dir);
  if (dir.empty()) {
    std::fprintf(stderr, "--golden_dir is required\n");
    return 2;
  }
  auto backend = glm4v::GetBackend(absl::GetFlag(FLAGS_backend));
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 2;
  }
  glm4v::WeightLoadOptions weights;
  const absl::Status weight_flag =
      glm4v::ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype), &weights);
  auto kv_dtype = glm4v::ParseFloatDTypeFlag("kv_dtype", absl::GetFlag(FLAGS_kv_dtype));
  if (!weight_flag.ok() || !kv_dtype.ok()) {
    std::fprintf(stderr, "%s\n",
                 (weight_flag.ok() ? kv_dtype.status() : weight_flag).ToString().c_str());
    return 2;
  }
  glm4v::GoldenOptions options;
  options.weight_dtype = weights.matrix_dtype;
  options.quantization = weights.quantization;
  options.kv_dtype = *kv_dtype;
  glm4v::GoldenTolerance tolerance = glm4v::GoldenToleranceFor(**backend);
  if (options.weight_dtype == glm4v::DType::kBF16 || options.kv_dtype == glm4v::DType::kBF16) {
    tolerance = glm4v::GoldenTolerance::kGpuBf16;
  }
  // fp8 is held to int8's criteria (issue #16).
  if (options.quantization == glm4v::WeightFormat::kInt8 ||
      options.quantization == glm4v::WeightFormat::kFp8) {
    tolerance = glm4v::GoldenTolerance::kInt8;
  } else if (options.quantization == glm4v::WeightFormat::kInt4) {
    tolerance = glm4v::GoldenTolerance::kInt4;
  }
  std::printf("backend %s, %s tolerances\n", std::string((*backend)->name()).c_str(),
              glm4v::GoldenToleranceName(tolerance));
  auto results = glm4v::RunGoldenCases(dir, *backend, tolerance, options);
  if (!results.ok()) {
    std::fprintf(stderr, "golden_check: %s\n", results.status().ToString().c_str());
    return 1;
  }
  int failed = 0;
  for (size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    std::printf("[%s] case %zu %s: %s\n", r.passed ? " OK " : "FAIL", i, r.kind.c_str(),
                r.summary.c_str());
    failed += r.passed ? 0 : 1;
  }
  std::printf("%zu cases, %d failed\n", results->size(), failed);
  return failed == 0 && !results->empty() ? 0 : 1;
}
