// A strict parser for Prometheus text format 0.0.4, for tests that scrape our own endpoints.
//
// Stricter than Prometheus on purpose: every line must be "# HELP", "# TYPE" or a sample (no
// blank lines or free comments), TYPE must come before its family's samples, a family's samples
// must be contiguous, series must be unique, and histograms must be well formed (le ascending,
// cumulative counts non-decreasing, a +Inf bucket equal to _count, _sum present).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::metrics {

using LabelMap = std::map<std::string, std::string>;

struct ParsedSample {
  std::string name;  // full sample name, e.g. foo_bucket
  LabelMap labels;
  double value = 0;
};

struct ParsedFamily {
  std::string name;
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;  // unescaped
  std::vector<ParsedSample> samples;
};

struct ParsedExposition {
  std::vector<ParsedFamily> families;

  const ParsedFamily* FindFamily(absl::string_view name) const;
  // The value of the sample with exactly this name and label set.
  std::optional<double> Value(absl::string_view sample_name, const LabelMap& labels = {}) const;
};

// Errors name the 1-based line number.
absl::StatusOr<ParsedExposition> ParseExposition(absl::string_view text);

}  // namespace glm4v::metrics
