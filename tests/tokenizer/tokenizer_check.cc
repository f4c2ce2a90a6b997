// Checks the tokenizer against tiktoken goldens:
//   bazel run //tests:tokenizer_check -- --golden=/abs/tokenizer_golden.json
//       --ranks=/abs/cl100k_base.tiktoken  (one command line)
// Exits 0 only if every case matches.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "tests/tokenizer/golden_check.h"

ABSL_FLAG(std::string, golden, "", "tokenizer_golden.json (absolute path under bazel run)");
ABSL_FLAG(std::string, ranks, "",
          "ranks file in tiktoken / GLM-4 tokenizer.model format; default: the golden file's "
          "\"ranks_file\" next to it");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string golden = absl::GetFlag(FLAGS_golden);
  const std::string ranks = absl::GetFlag(FLAGS_ranks);
  if (golden.empty()) {
    std::fprintf(stderr, "usage: tokenizer_check --golden=PATH [--ranks=PATH]\n");
    return 2;
  }
  auto report = glm4v::tokenizer::RunGoldenCheck(golden, ranks);
  if (!report.ok()) {
    std::fprintf(stderr, "tokenizer_check: %s\n", report.status().ToString().c_str());
    return 2;
  }
  for (const std::string& m : report->mismatches) std::printf("MISMATCH %s\n", m.c_str());
  std::printf("tokenizer_check: %d cases, %d checks, %zu mismatches -> %s\n", report->cases,
              report->checks, report->mismatches.size(), report->ok() ? "PASS" : "FAIL");
  return report->ok() ? 0 : 1;
}
