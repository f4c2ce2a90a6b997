// Resident memory of a process, from /proc/<pid>/status (Linux).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace glm4v {

// VmRSS of process `pid` in KiB (pid 0: this process). NOT_FOUND when the process (or /proc) is
// not there.
absl::StatusOr<int64_t> ReadResidentKiB(int pid = 0);

}  // namespace glm4v
