// Run-time choice of the CPU's vector instruction set for the hand-written kernels.
//
// Builds target plain x86-64, so every SIMD kernel is compiled for its instruction set with a
// function-level target attribute and picked here from CPUID at run time. GLM4V_SIMD=scalar|avx2|
// avx512 caps the level (never above what the CPU has), so tests and benchmarks can run every
// branch the machine supports.
#pragma once

namespace glm4v {
namespace cpu {

enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// What CPUID reports: kAvx512 needs AVX-512 F/BW/DQ/VL, kAvx2 needs AVX2 and FMA.
SimdLevel DetectedSimdLevel();
// The level the kernels use: the detected one, capped by GLM4V_SIMD or SetSimdLevelForTesting.
SimdLevel ActiveSimdLevel();
// Caps the active level (clamped to the detected one); returns the level now active.
SimdLevel SetSimdLevelForTesting(SimdLevel level);

const char* SimdLevelName(SimdLevel level);

}  // namespace cpu
}  // namespace glm4v
