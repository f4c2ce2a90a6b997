// Deterministic text generators for tokenizer tests and the benchmark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace glm4v::tokenizer::testing {

// Small fast PRNG (splitmix64); the same seed gives the same text on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// About `bytes` bytes of mixed content: English prose, C++/Python code, numbers, Chinese and
// Japanese text, emoji, assorted whitespace. Always valid UTF-8.
std::string MixedText(size_t bytes, uint64_t seed);

// `chars` random code points drawn from many scripts, whitespace kinds, marks, emoji and
// punctuation (never surrogates). Valid UTF-8.
std::string RandomUnicode(Rng& rng, size_t chars);

// `n` uniformly random bytes (usually invalid UTF-8).
std::string RandomBytes(Rng& rng, size_t n);

// Appends the UTF-8 encoding of code point cp (must be a scalar value).
void AppendCodePoint(uint32_t cp, std::string* out);

}  // namespace glm4v::tokenizer::testing
