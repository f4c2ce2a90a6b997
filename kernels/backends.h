// Run-time backend selection by name.
//
// "cpu" is always present. Device backends register themselves from their own library, linked
// only into binaries that want them (//kernels:all_backends adds "cuda"), so a CPU-only binary
// never depends on the CUDA runtime libraries. See kernels/README.md.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/ops.h"

namespace glm4v {

// Returns the process-wide instance of a backend, or why there is none. A registered backend
// whose hardware is missing reports UNAVAILABLE (so tests can skip on exactly that code).
using BackendFactory = absl::StatusOr<Backend*> (*)();

// A process-wide backend instance by name: NOT_FOUND for unknown names and backends not linked
// into this binary, the factory's error (UNAVAILABLE: no device) otherwise. Backends are
// stateless apart from device handles, so one instance serves every caller.
absl::StatusOr<Backend*> GetBackend(absl::string_view name);

// GetBackend for a serving process: a registered backend whose device is missing is
// FAILED_PRECONDITION naming the backend and the device ("--backend=cuda: no usable device:
// ..."), the error a pod scheduled without its GPU should die with; other errors as GetBackend.
absl::StatusOr<Backend*> GetServingBackend(absl::string_view name);

// Names of the backends linked into this binary ("cpu" first), whether or not a device is
// present right now.
std::vector<std::string> AvailableBackends();

// Called from a static initializer of a backend's registration library. Returns true so it
// can initialize a namespace-scope constant; registering a name twice is a programming error
// (the second registration is ignored and false returned).
bool RegisterBackend(absl::string_view name, BackendFactory factory);

}  // namespace glm4v
