// Run-time backend selection: "cpu" now; "cuda" registers here when it lands.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/ops.h"

namespace glm4v {

// A process-wide backend instance by name (NOT_FOUND for unknown or not compiled in).
// Backends are stateless apart from device handles, so one instance serves every caller.
absl::StatusOr<Backend*> GetBackend(absl::string_view name);
std::vector<std::string> AvailableBackends();

}  // namespace glm4v
