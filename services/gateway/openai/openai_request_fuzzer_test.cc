// Replays LLVMFuzzerTestOneInput over a fixed seed corpus and a deterministic set of mutations
// of it (byte flips, truncations, insertions of JSON-significant bytes, splices). The entry
// point aborts on a broken invariant; under --config=asan memory errors fail the test too.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

const std::vector<std::string>& Seeds() {
  static const std::vector<std::string> seeds = {
      R"({"model":"glm-4v-9b","messages":[{"role":"user","content":"hi"}]})",
      R"({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[)"
      R"({"type":"text","text":"what"},{"type":"image_url","image_url":{"url":)"
      R"("data:image/png;base64,iVBORw0KGgo="}}]}],"stream":true,)"
      R"("stream_options":{"include_usage":true},"max_tokens":16,"temperature":0.7,)"
      R"("top_p":0.9,"top_k":5,"seed":42,"stop":["\n","</s>"],"logprobs":true,"top_logprobs":3})",
      R"({"messages":[{"role":"assistant","content":null},{"role":"tool","content":"ok"}],)"
      R"("n":1,"frequency_penalty":0,"presence_penalty":0.0,"repetition_penalty":1.2})",
      R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":"https://x/y.png"}]}]})",
      "data:image/jpeg;base64,/9j/4AAQSkZJRg==",
      R"({"messages":[{"role":"user","content":"\u00e9\ud83d\ude00"}],"stop":"x"})",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
  };
  return seeds;
}

void RunInput(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

TEST(OpenAiRequestFuzzerTest, SeedsRun) {
  for (const std::string& s : Seeds()) RunInput(s);
}

TEST(OpenAiRequestFuzzerTest, DeterministicMutations) {
  static const char kInteresting[] = "{}[]\",:\\0-e.9 \x00\xff\xc3\xa9nulltruefalse";
  std::mt19937 rng(12345);  // fixed: the same corpus on every run and machine
  int runs = 0;
  for (const std::string& seed : Seeds()) {
    // Every truncation.
    for (size_t n = 0; n <= seed.size(); ++n) {
      RunInput(seed.substr(0, n));
      ++runs;
    }
    // Random edits, stacked up to 8 deep.
    for (int iter = 0; iter < 1500; ++iter) {
      std::string s = seed;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const size_t pos = rng() % s.size();
        switch (rng() % 5) {
          case 0: s[pos] = static_cast<char>(s[pos] ^ (1u << (rng() % 8))); break;
          case 1: s.erase(pos, 1 + rng() % 4); break;
          case 2: s.insert(pos, 1, kInteresting[rng() % (sizeof(kInteresting) - 1)]); break;
          case 3: {  // splice in a piece of another seed
            const std::string& other = Seeds()[rng() % Seeds().size()];
            const size_t from = rng() % other.size();
            s.insert(pos, other.substr(from, 1 + rng() % 32));
            break;
          }
          default: s.insert(pos, std::string(1 + rng() % 16, s[pos])); break;
        }
      }
      RunInput(s);
      ++runs;
    }
  }
  EXPECT_GT(runs, 10000);
}

}  // namespace
