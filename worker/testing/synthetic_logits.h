// The logits rows the sampler tests and //worker:engine_host_bench use at real vocabularies:
// "peaked" rows look like a language model's output (normal sigma 2 plus 32 spiked tokens at
// 6..14), "flat" ones (normal sigma 3) give a large top-p nucleus. Deterministic per seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace glm4v::worker::testing {

inline std::vector<float> SyntheticLogits(int vocab, bool peaked, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, peaked ? 2.0f : 3.0f);
  std::vector<float> row(vocab);
  for (float& v : row) v = normal(rng);
  if (peaked) {
    std::uniform_int_distribution<int> id(0, vocab - 1);
    std::uniform_real_distribution<float> height(6.0f, 14.0f);
    for (int i = 0; i < 32; ++i) row[id(rng)] = height(rng);
  }
  return row;
}

}  // namespace glm4v::worker::testing
