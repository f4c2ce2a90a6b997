// Runs the libFuzzer entry point over a deterministic corpus of mutated images, so
// the decoders' error paths get exercised in every CI run without clang/libFuzzer.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/vision/image/image_decoder.h"
#include "services/vision/image/test_encoders.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace glm4v {
namespace {

using ::glm4v::testing::EncodeJpeg;
using ::glm4v::testing::EncodePng;
using ::glm4v::testing::FixPngCrcs;
using ::glm4v::testing::JpegSpec;
using ::glm4v::testing::PngSpec;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int FuzzOne(const std::string& bytes) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  for (const char* name : {"image0.png", "image1.png", "image2.png", "image0.jpg"}) {
    seeds.push_back(ReadFile(std::string("tests/data/tiny-glm4v/") + name));
  }
  std::mt19937 rng(1);
  auto noise = [&](size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng());
    return v;
  };
  seeds.push_back(EncodePng(PngSpec{9, 7, 2, 8, true, noise(9 * 7 * 3)}));      // interlaced
  seeds.push_back(EncodePng(PngSpec{6, 5, 0, 1, false, noise(5)}));             // 1-bit gray
  seeds.push_back(EncodePng(PngSpec{4, 4, 6, 16, false, noise(4 * 4 * 8)}));    // RGBA16
  seeds.push_back(EncodePng(PngSpec{4, 3, 4, 8, true, noise(4 * 3 * 2)}));      // gray+alpha
  PngSpec palette{5, 5, 3, 4, false, noise(3 * 5)};
  palette.palette = noise(16 * 3);
  palette.trns = {0, 10, 255};
  seeds.push_back(EncodePng(palette));
  JpegSpec jpeg{24, 17, 3, 80, true, noise(24 * 17 * 3)};                      // progressive
  seeds.push_back(EncodeJpeg(jpeg));
  JpegSpec gray{16, 16, 1, 90, false, noise(256)};
  seeds.push_back(EncodeJpeg(gray));
  JpegSpec cmyk{8, 8, 4, 90, false, noise(8 * 8 * 4)};
  seeds.push_back(EncodeJpeg(cmyk));
  return seeds;
}

void Mutate(std::string* s, std::mt19937* rng) {
  if (s->empty()) return;
  const int ops = 1 + (*rng)() % 4;
  for (int i = 0; i < ops && !s->empty(); ++i) {
    const size_t pos = (*rng)() % s->size();
    switch ((*rng)() % 6) {
      case 0:  // bit flip
        (*s)[pos] ^= static_cast<char>(1u << ((*rng)() % 8));
        break;
      case 1:  // random byte
        (*s)[pos] = static_cast<char>((*rng)());
        break;
      case 2:  // interesting byte
        (*s)[pos] = "\x00\xFF\x7F\x80\x01"[(*rng)() % 5];
        break;
      case 3:  // big-endian extreme 32-bit value (sizes, lengths)
        for (size_t k = 0; k < 4 && pos + k < s->size(); ++k) {
          (*s)[pos + k] = ((*rng)() % 2) ? '\xFF' : '\x7F';
        }
        break;
      case 4:  // delete a range
        s->erase(pos, 1 + (*rng)() % 16);
        break;
      case 5:  // duplicate a range
        s->insert(pos, s->substr(pos, 1 + (*rng)() % 16));
        break;
    }
  }
}

TEST(ImageDecodeFuzzTest, SeedsDecode) {
  for (const std::string& seed : Seeds()) {
    ASSERT_FALSE(seed.empty());
    EXPECT_EQ(FuzzOne(seed), 0);
  }
}

TEST(ImageDecodeFuzzTest, TruncationsAndMutationsNeverCrash) {
  const std::vector<std::string> seeds = Seeds();
  int runs = 0;
  for (const std::string& seed : seeds) {
    for (int k = 0; k <= 40; ++k) {
      FuzzOne(seed.substr(0, seed.size() * k / 40));
      ++runs;
    }
  }
  std::mt19937 rng(0x5EED);
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string input = seeds[rng() % seeds.size()];
    Mutate(&input, &rng);
    // Keep PNG chunk CRCs valid half the time so mutations reach IHDR/PLTE/IDAT logic.
    if (input.size() > 8 && input[1] == 'P' && rng() % 2 == 0) FixPngCrcs(&input);
    if (rng() % 8 == 0) input.resize(rng() % (input.size() + 1));
    EXPECT_EQ(FuzzOne(input), 0);
    ++runs;
    (DecodeImage(input, DecodeLimits()).ok() ? decoded : rejected)++;
  }
  EXPECT_GT(runs, 4000);
  // The corpus must reach both outcomes, or the mutations test nothing useful.
  std::printf("mutated inputs: %d decoded, %d rejected\n", decoded, rejected);
  EXPECT_GT(decoded, 100);
  EXPECT_GT(rejected, 100);
}

TEST(ImageDecodeFuzzTest, EdgeInputs) {
  EXPECT_EQ(LLVMFuzzerTestOneInput(nullptr, 0), 0);
  EXPECT_EQ(FuzzOne(std::string("\x89PNG\r\n\x1a\n", 8)), 0);
  EXPECT_EQ(FuzzOne("\xFF\xD8\xFF"), 0);
  EXPECT_EQ(FuzzOne(std::string(100000, '\xFF')), 0);
}

}  // namespace
}  // namespace glm4v
