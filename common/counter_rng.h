// Counter-based uniform random numbers: the draw for (seed, step) is a pure function of both.
// A sequence's sampling therefore does not depend on which other sequences share its batch, on
// how often it was preempted and recomputed, or on how many draws earlier steps consumed.
#pragma once

#include <cstdint>

namespace glm4v {

// SplitMix64 output function (a bijective 64-bit mixer with full avalanche).
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The `step`-th value of the SplitMix64 stream started at `seed`; steps of one seed are the
// consecutive outputs of that generator, and different seeds start different streams.
inline uint64_t CounterRandom64(uint64_t seed, uint64_t step) {
  constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
  return Mix64(Mix64(seed) + (step + 1) * kGamma);
}

// Uniform double in [0, 1) with 53 random bits.
inline double CounterUniform(uint64_t seed, uint64_t step) {
  return static_cast<double>(CounterRandom64(seed, step) >> 11) * 0x1.0p-53;
}

}  // namespace glm4v
