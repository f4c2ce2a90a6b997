// Pieces of the Prometheus text exposition format 0.0.4 shared by the renderer and the parser:
// name rules, escaping and sample value formatting.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace glm4v::metrics {

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(absl::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved for Prometheus itself).
bool IsValidLabelName(absl::string_view name);

// Label values escape backslash, double quote and newline.
std::string EscapeLabelValue(absl::string_view value);
// HELP text escapes only backslash and newline.
std::string EscapeHelp(absl::string_view help);

// "+Inf", "-Inf", "NaN", integers without a fraction, else the shortest round-tripping form.
std::string FormatValue(double value);

}  // namespace glm4v::metrics
