// Registers "cuda" with kernels/backends.h. Linked (alwayslink) only through
// //kernels:all_backends, so CPU-only binaries never pull in cuBLASLt.
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/backends.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace glm4v::cuda {
namespace {

absl::StatusOr<Backend*> GetCudaBackendIfPresent() {
  // UNAVAILABLE (not the backend's FAILED_PRECONDITION) so callers and tests can tell "no
  // device here" from "device present but initialization failed".
  if (DeviceCount() == 0) return absl::UnavailableError(NoDeviceReason());
  return GetCudaBackend();
}

const bool kRegistered = RegisterBackend("cuda", &GetCudaBackendIfPresent);

}  // namespace
}  // namespace glm4v::cuda
