#include "kernels/backends.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cpu/cpu_backend.h"

namespace glm4v {

absl::StatusOr<Backend*> GetBackend(absl::string_view name) {
  if (name == "cpu") {
    static CpuBackend* cpu = new CpuBackend();
    return cpu;
  }
  return absl::NotFoundError(absl::StrCat("unknown backend '", name, "'; available: ",
                                          absl::StrJoin(AvailableBackends(), ", ")));
}

std::vector<std::string> AvailableBackends() { return {"cpu"}; }

}  // namespace glm4v
