#include "kernels/backends.h"

#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cpu/cpu_backend.h"

namespace glm4v {
namespace {

absl::StatusOr<Backend*> GetCpuBackend() {
  static CpuBackend* cpu = new CpuBackend();
  return cpu;
}

// Function-local so registration from other translation units' static initializers is safe
// regardless of initialization order.
struct Registry {
  absl::Mutex mu;
  std::map<std::string, BackendFactory, std::less<>> factories ABSL_GUARDED_BY(mu) = {
      {"cpu", &GetCpuBackend}};
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

bool RegisterBackend(absl::string_view name, BackendFactory factory) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  return r.factories.emplace(std::string(name), factory).second;
}

absl::StatusOr<Backend*> GetBackend(absl::string_view name) {
  BackendFactory factory = nullptr;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mu);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (factory == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "unknown backend '", name, "'; available: ", absl::StrJoin(AvailableBackends(), ", "),
        name == "cuda" ? " (this binary was built without //kernels:all_backends or with "
                         "--define=cuda=0)"
                       : ""));
  }
  // Outside the lock: a factory may take long (device initialization).
  return factory();
}

std::vector<std::string> AvailableBackends() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mu);
  std::vector<std::string> names = {"cpu"};
  for (const auto& [name, factory] : r.factories) {
    if (name != "cpu") names.push_back(name);
  }
  return names;
}

absl::StatusOr<Backend*> GetServingBackend(absl::string_view name) {
  absl::StatusOr<Backend*> backend = GetBackend(name);
  if (backend.status().code() == absl::StatusCode::kUnavailable) {
    return absl::FailedPreconditionError(absl::StrCat("--backend=", name, ": no usable ", name,
                                                      " device: ", backend.status().message()));
  }
  return backend;
}

}  // namespace glm4v
