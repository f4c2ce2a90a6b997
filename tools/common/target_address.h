// Whether a gRPC target is this machine. The load generator only talks to this machine unless
// told otherwise (pointing a load test at a shared or production endpoint by accident is the
// failure this guards against); the clients warn when an API key would travel in clear to
// another machine.
#pragma once

#include "absl/strings/string_view.h"

namespace glm4v::tools {

// True for localhost, 127.0.0.0/8, ::1 (optionally with gRPC's "ipv4:"/"ipv6:"/"dns:///"
// prefixes and a port) and unix: sockets.
bool IsLoopbackTarget(absl::string_view target);

}  // namespace glm4v::tools
