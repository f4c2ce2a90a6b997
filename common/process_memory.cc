#include "common/process_memory.h"

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace glm4v {

absl::StatusOr<int64_t> ReadResidentKiB(int pid) {
  const std::string path =
      pid == 0 ? std::string("/proc/self/status") : absl::StrCat("/proc/", pid, "/status");
  std::ifstream f(path);
  if (!f) return absl::NotFoundError(absl::StrCat("no ", path));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line.substr(6), ' ', absl::SkipWhitespace());
    int64_t kib = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
  }
  return absl::InternalError(absl::StrCat("no VmRSS in ", path));
}

}  // namespace glm4v
