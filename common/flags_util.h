// Process start-up convention for every binary in the project.
//
// Flags are plain ABSL_FLAG definitions in the binary's main .cc (libraries only declare flags
// they own, like --log_level in common/logging). main() then calls InitBinary once:
//
//   ABSL_FLAG(int, port, 50051, "gRPC port");
//   int main(int argc, char** argv) {
//     std::vector<char*> args = glm4v::InitBinary(argc, argv, "gateway", "GLM-4V gateway");
//     ...absl::GetFlag(FLAGS_port)...
//   }
#pragma once

#include <vector>

#include "absl/strings/string_view.h"

namespace glm4v {

// Sets the usage message, runs absl::ParseCommandLine (unknown flags exit, --help works),
// applies --log_level / $GLM4V_LOG_LEVEL and tags log lines with component=<component>.
// Exits with status 2 on an invalid log level. Returns the positional arguments (argv[0] first).
std::vector<char*> InitBinary(int argc, char** argv, absl::string_view component,
                              absl::string_view usage);

}  // namespace glm4v
