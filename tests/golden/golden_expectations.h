// The gtest assertions shared by the golden tests of every backend.
#pragma once

#include <string>

#include "kernels/ops.h"
#include "tests/golden/golden_runner.h"

namespace glm4v {

// Runs every case of `golden_dir` on `backend` with `tolerance` and expects each to pass, and
// (for the tiny set) every case kind to be present, so a runner that silently skipped a kind
// would not go unnoticed.
void ExpectTinyGoldenCasesPass(const std::string& golden_dir, Backend* backend,
                               GoldenTolerance tolerance, const GoldenOptions& options = {});

}  // namespace glm4v
