#include "kernels/cpu/simd_level.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace glm4v {
namespace cpu {
namespace {

SimdLevel Detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return SimdLevel::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

SimdLevel Clamp(SimdLevel level) {
  const SimdLevel detected = DetectedSimdLevel();
  return static_cast<int>(level) < static_cast<int>(detected) ? level : detected;
}

SimdLevel FromEnvironment() {
  const char* env = std::getenv("GLM4V_SIMD");
  if (env == nullptr) return DetectedSimdLevel();
  if (std::strcmp(env, "scalar") == 0) return SimdLevel::kScalar;
  if (std::strcmp(env, "avx2") == 0) return Clamp(SimdLevel::kAvx2);
  return DetectedSimdLevel();
}

std::atomic<int>& Active() {
  static std::atomic<int> level{static_cast<int>(FromEnvironment())};
  return level;
}

}  // namespace

SimdLevel DetectedSimdLevel() {
  static const SimdLevel level = Detect();
  return level;
}

SimdLevel ActiveSimdLevel() {
  return static_cast<SimdLevel>(Active().load(std::memory_order_relaxed));
}

SimdLevel SetSimdLevelForTesting(SimdLevel level) {
  const SimdLevel clamped = Clamp(level);
  Active().store(static_cast<int>(clamped));
  return clamped;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAvx2:
      return "avx2";
    case SimdLevel::kScalar:
      break;
  }
  return "scalar";
}

}  // namespace cpu
}  // namespace glm4v
