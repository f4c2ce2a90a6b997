// Where the gateway finds its decoder workers at run time (--worker_discovery):
//   dns:///NAME:PORT   every address NAME resolves to (the worker StatefulSet's headless
//                      Service in Kubernetes lists one per ready pod), each with PORT;
//   file:///PATH       one host:port per line ('#' starts a comment), re-read on every poll:
//                      edit or replace the file to add or remove workers (tests, installs
//                      without Kubernetes).
// The pool (worker_pool.h) adds new addresses and drains the ones that disappear.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glm4v {

// INVALID_ARGUMENT for a malformed spec; UNAVAILABLE when the name does not resolve or the file
// cannot be read (the pool then keeps its current members).
absl::StatusOr<std::vector<std::string>> DiscoverWorkers(const std::string& spec);

// Whether `spec` is a discovery spec this file understands (checked at startup).
absl::Status ValidateDiscoverySpec(const std::string& spec);

}  // namespace glm4v
