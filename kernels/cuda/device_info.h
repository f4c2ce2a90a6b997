// Minimal CUDA runtime probes usable from host-only code (no CUDA headers needed by callers).
#pragma once

#include <string>

namespace glm4v::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int DeviceCount();

// Human-readable reason why DeviceCount() is 0 (driver missing, no device...), for skip messages.
std::string NoDeviceReason();

// Adds `value` to each of the n floats in `host` on device 0 (a smoke test of the toolchain).
// Returns false with `error` set on any CUDA failure.
bool AddScalarOnDevice(float* host, int n, float value, std::string* error);

}  // namespace glm4v::cuda
