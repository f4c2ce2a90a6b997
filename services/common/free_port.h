// A TCP port on 127.0.0.1 that nothing listens on right now (for tests and the launcher).
#pragma once

#include "absl/status/statusor.h"

namespace glm4v {

// Binds port 0 and reports what the kernel chose. Another process could take the port before
// the caller binds it; ports are drawn from the ephemeral range, so this is rare.
absl::StatusOr<int> PickFreePort();

}  // namespace glm4v
