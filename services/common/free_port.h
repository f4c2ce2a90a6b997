// A TCP port on 127.0.0.1 that nothing listens on right now (for tests and the launcher).
#pragma once

#include "absl/status/statusor.h"

namespace glm4v {

// A port below the kernel's ephemeral range (ip_local_port_range) that binds right now. Ports
// from bind(0) come from the ephemeral range, which every outgoing connection draws its source
// port from too: a server given such a port can find it taken by some connect() before it
// binds (seen in CI: a vision service's metrics port, picked while its tower loaded for 40 s,
// taken by the gateway's reconnect attempts). Below the range only another explicit bind can
// take it. Falls back to bind(0) where the range leaves no room below it.
absl::StatusOr<int> PickFreePort();

}  // namespace glm4v
