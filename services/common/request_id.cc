#include "services/common/request_id.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace glm4v {

std::string NewRequestId() {
  static absl::Mutex* mu = new absl::Mutex;
  static absl::BitGen* gen = new absl::BitGen;
  uint64_t value;
  {
    absl::MutexLock lock(mu);
    value = absl::Uniform<uint64_t>(*gen);
  }
  return absl::StrFormat("%016x", value);
}

std::string RequestIdOrNew(absl::string_view requested) {
  if (requested.empty() || requested.size() > 128) return NewRequestId();
  for (char c : requested) {
    if (c <= ' ' || c > '~') return NewRequestId();
  }
  return std::string(requested);
}

}  // namespace glm4v
