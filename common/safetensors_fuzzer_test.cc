// Replays the safetensors LLVMFuzzerTestOneInput over a deterministic corpus: the tiny
// checkpoint's shard, small hand-built files, every header truncation and seeded mutations of
// the header bytes. The entry point aborts on a broken invariant; under --config=asan memory
// errors fail the test too. tools/fuzz.sh fuzzes the same entry point with libFuzzer.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Safetensors(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  out += header;
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<char>(i * 37));
  return out;
}

int FuzzOne(const std::string& bytes) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::vector<std::string> Seeds() {
  return {
      ReadFile("tests/data/tiny-glm4v/model/model-00002-of-00002.safetensors"),
      Safetensors(R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2,3],)"
                  R"("data_offsets":[0,12]},"b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}})",
                  28),
      Safetensors(R"({"h":{"dtype":"F16","shape":[3,1],"data_offsets":[0,6]},)"
                  R"("i":{"dtype":"I64","shape":[],"data_offsets":[6,14]},)"
                  R"("z":{"dtype":"F32","shape":[0,5],"data_offsets":[14,14]}})",
                  14),
      Safetensors("{}", 0),
  };
}

TEST(SafetensorsFuzzerTest, SeedsRun) {
  const std::vector<std::string> seeds = Seeds();
  ASSERT_GT(seeds[0].size(), 1000u);
  for (const std::string& s : seeds) EXPECT_EQ(FuzzOne(s), 0);
}

TEST(SafetensorsFuzzerTest, TruncationsAndMutations) {
  static const char kInteresting[] = "{}[]\",:-0123456789e.\x00\xff\x7f";
  std::mt19937 rng(4242);  // fixed: the same corpus on every run and machine
  int runs = 0;
  for (const std::string& seed : Seeds()) {
    // Cut inside the length prefix / header, and a few cuts in the data section.
    const size_t header_end = std::min<size_t>(seed.size(), 8 + 400);
    for (size_t n = 0; n <= header_end; n += 3) {
      FuzzOne(seed.substr(0, n));
      ++runs;
    }
    for (int k = 1; k <= 8; ++k) FuzzOne(seed.substr(0, seed.size() - seed.size() * k / 16));
    for (int iter = 0; iter < 400; ++iter) {
      std::string s = seed;
      const size_t span = std::min<size_t>(s.size(), 8 + 600);
      const int edits = 1 + static_cast<int>(rng() % 6);
      for (int e = 0; e < edits; ++e) {
        // Edits shrink or grow the input: positions are drawn from what is there now.
        const size_t limit = std::min(span, s.size());
        if (limit == 0) break;
        const size_t pos = rng() % limit;
        switch (rng() % 5) {
          case 0: s[pos] = static_cast<char>(s[pos] ^ (1u << (rng() % 8))); break;
          case 1: s[pos] = kInteresting[rng() % (sizeof(kInteresting) - 1)]; break;
          case 2: s.erase(pos, 1 + rng() % 4); break;
          case 3: s.insert(pos, 1, kInteresting[rng() % (sizeof(kInteresting) - 1)]); break;
          case 4: s[pos] = static_cast<char>(rng()); break;
        }
      }
      FuzzOne(s);
      ++runs;
    }
  }
  EXPECT_GT(runs, 1600);
}

TEST(SafetensorsFuzzerTest, EdgeInputs) {
  EXPECT_EQ(LLVMFuzzerTestOneInput(nullptr, 0), 0);
  EXPECT_EQ(FuzzOne(std::string(8, '\xff')), 0);
  EXPECT_EQ(FuzzOne(std::string(8, '\0')), 0);
  EXPECT_EQ(FuzzOne(Safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                                "\"data_offsets\":[0,18446744073709551615]}}", 4)), 0);
}

}  // namespace
