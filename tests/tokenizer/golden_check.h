// Checks a Tokenizer against a tiktoken golden file (tests/data/tokenizer/tokenizer_golden.json):
// for every case, Encode == "ids", EncodeOrdinary == "ordinary_ids", and both decode back to the
// exact text; the file's special-token ids and pattern must match ours.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glm4v::tokenizer {

struct GoldenReport {
  int cases = 0;
  int checks = 0;
  std::vector<std::string> mismatches;  // One line per failed check.
  bool ok() const { return mismatches.empty(); }
};

// Errors (unreadable or malformed files) are returned as a status; mismatches are in the report.
// An empty `ranks_path` means the golden's "ranks_file", relative to the golden file's folder.
absl::StatusOr<GoldenReport> RunGoldenCheck(const std::string& golden_path,
                                            const std::string& ranks_path);

}  // namespace glm4v::tokenizer
