#include "common/flags_util.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/logging.h"

namespace glm4v {

std::vector<char*> InitBinary(int argc, char** argv, absl::string_view component,
                              absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  SetLogComponent(component);
  absl::Status s = InitLogging();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "binary",
                 std::string(s.message()).c_str());
    std::exit(2);
  }
  return args;
}

}  // namespace glm4v
