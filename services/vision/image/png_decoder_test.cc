#include "services/vision/image/png_decoder.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/vision/image/test_encoders.h"

namespace glm4v {
namespace {

using ::glm4v::testing::EncodePng;
using ::glm4v::testing::EncodePngRgb;
using ::glm4v::testing::FixPngCrcs;
using ::glm4v::testing::PngSpec;
using ::testing::HasSubstr;

RgbImage MustDecode(const std::string& png) {
  EXPECT_FALSE(png.empty()) << "test encoder failed";
  absl::StatusOr<RgbImage> img = DecodePng(png, DecodeLimits());
  EXPECT_TRUE(img.ok()) << img.status();
  return img.ok() ? *img : RgbImage();
}

std::vector<uint8_t> Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Chunk of type `type` with `payload`; CRC left zero (FixPngCrcs fills it).
std::string Chunk(const std::string& type, const std::string& payload) {
  std::string c;
  const uint32_t n = payload.size();
  c += {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
        static_cast<char>(n)};
  c += type + payload + std::string(4, '\0');
  return c;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// A PNG whose IHDR says width x height (8-bit RGB) followed by a token IDAT.
std::string CraftPng(uint32_t width, uint32_t height) {
  std::string ihdr = Be32(width) + Be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IHDR", ihdr) +
                    Chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) +
                    Chunk("IEND", "");
  FixPngCrcs(&png);
  return png;
}

TEST(PngDecoderTest, Rgb8) {
  std::vector<uint8_t> rgb = {1, 2, 3, 40, 50, 60, 255, 0, 128, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  RgbImage img = MustDecode(EncodePngRgb(3, 2, rgb));
  EXPECT_EQ(img.width, 3);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.pixels, rgb);
}

TEST(PngDecoderTest, Gray8IsReplicated) {
  PngSpec s{3, 1, 0, 8, false, {0, 77, 255}};
  RgbImage img = MustDecode(EncodePng(s));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 0, 0, 77, 77, 77, 255, 255, 255}));
}

TEST(PngDecoderTest, LowBitDepthGrayIsScaled) {
  // 1 bit: 1,0,1 -> 255,0,255.
  RgbImage one = MustDecode(EncodePng(PngSpec{3, 1, 0, 1, false, {0b10100000}}));
  EXPECT_EQ(one.pixels, (std::vector<uint8_t>{255, 255, 255, 0, 0, 0, 255, 255, 255}));
  // 2 bits: 0,1,2,3 -> 0,85,170,255.
  RgbImage two = MustDecode(EncodePng(PngSpec{4, 1, 0, 2, false, {0b00011011}}));
  EXPECT_EQ(two.at(1, 0, 0), 85);
  EXPECT_EQ(two.at(2, 0, 1), 170);
  EXPECT_EQ(two.at(3, 0, 2), 255);
  // 4 bits: 1, 14 -> 17, 238.
  RgbImage four = MustDecode(EncodePng(PngSpec{2, 1, 0, 4, false, {0x1E}}));
  EXPECT_EQ(four.pixels, (std::vector<uint8_t>{17, 17, 17, 238, 238, 238}));
}

TEST(PngDecoderTest, GrayAlphaDropsAlphaWithoutCompositing) {
  // (gray, alpha): fully transparent pixels keep their gray value, like PIL's LA->RGB.
  PngSpec s{2, 1, 4, 8, false, {200, 0, 30, 255}};
  RgbImage img = MustDecode(EncodePng(s));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{200, 200, 200, 30, 30, 30}));
}

TEST(PngDecoderTest, RgbaDropsAlpha) {
  PngSpec s{2, 1, 6, 8, false, {10, 20, 30, 0, 250, 240, 230, 128}};
  RgbImage img = MustDecode(EncodePng(s));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{10, 20, 30, 250, 240, 230}));
}

TEST(PngDecoderTest, PaletteWithTransparency) {
  PngSpec s{3, 1, 3, 8, false, {2, 0, 1}};
  s.palette = {255, 0, 0, 0, 255, 0, 0, 0, 255};
  s.trns = {0, 128};  // entry 0 transparent, entry 1 half: ignored for RGB
  RgbImage img = MustDecode(EncodePng(s));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 0, 255, 255, 0, 0, 0, 255, 0}));
}

TEST(PngDecoderTest, LowBitDepthPalette) {
  PngSpec s{3, 1, 3, 4, false, {0x10, 0x20}};  // indices 1, 0, 2
  s.palette = {9, 8, 7, 1, 2, 3, 100, 110, 120};
  RgbImage img = MustDecode(EncodePng(s));
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{1, 2, 3, 9, 8, 7, 100, 110, 120}));
}

TEST(PngDecoderTest, SixteenBitKeepsHighByte) {
  // RGB16 big-endian: 0x12 0x34 -> 0x12; 0x00 0xFF -> 0 (high byte, not rounded).
  PngSpec rgb{1, 1, 2, 16, false, {0x12, 0x34, 0x00, 0xFF, 0xFF, 0xFF}};
  EXPECT_EQ(MustDecode(EncodePng(rgb)).pixels, (std::vector<uint8_t>{0x12, 0x00, 0xFF}));
  PngSpec gray{2, 1, 0, 16, false, {0xAB, 0xCD, 0x7F, 0xFF}};
  EXPECT_EQ(MustDecode(EncodePng(gray)).pixels,
            (std::vector<uint8_t>{0xAB, 0xAB, 0xAB, 0x7F, 0x7F, 0x7F}));
  PngSpec rgba{1, 1, 6, 16, false, {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00, 0x00}};
  EXPECT_EQ(MustDecode(EncodePng(rgba)).pixels, (std::vector<uint8_t>{0x01, 0x03, 0x05}));
  PngSpec ga{1, 1, 4, 16, false, {0x40, 0x41, 0xFF, 0xFF}};
  EXPECT_EQ(MustDecode(EncodePng(ga)).pixels, (std::vector<uint8_t>{0x40, 0x40, 0x40}));
}

TEST(PngDecoderTest, InterlacedMatchesSource) {
  const int w = 13, h = 11;  // odd sizes exercise partial Adam7 passes
  std::vector<uint8_t> rgb = Noise(w * h * 3, 7);
  PngSpec s{w, h, 2, 8, true, rgb};
  std::string png = EncodePng(s);
  ASSERT_EQ(png[8 + 8 + 12], 1) << "IHDR interlace byte not set";
  RgbImage img = MustDecode(png);
  EXPECT_EQ(img.width, w);
  EXPECT_EQ(img.height, h);
  EXPECT_EQ(img.pixels, rgb);
  // Interlaced palette too.
  PngSpec p{5, 4, 3, 8, true, std::vector<uint8_t>(20)};
  for (int i = 0; i < 20; ++i) p.rows[i] = i % 3;
  p.palette = {10, 0, 0, 0, 20, 0, 0, 0, 30};
  RgbImage pi = MustDecode(EncodePng(p));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(pi.pixels[i * 3 + (i % 3)], 10 * (i % 3 + 1));
}

TEST(PngDecoderTest, TruncatedAtManyPointsIsInvalidArgument) {
  std::string png = EncodePngRgb(32, 32, Noise(32 * 32 * 3, 1));  // noise: big IDAT
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const size_t idat_len = (uint8_t(png[idat - 4]) << 24) | (uint8_t(png[idat - 3]) << 16) |
                          (uint8_t(png[idat - 2]) << 8) | uint8_t(png[idat - 1]);
  std::vector<size_t> cuts = {1, 4, 8, 12, 20, 32, 33, idat + 4, idat + 5};
  for (double f : {0.1, 0.5, 0.9, 0.999}) cuts.push_back(idat + 4 + size_t(f * idat_len));
  for (size_t cut : cuts) {
    absl::StatusOr<RgbImage> img = DecodePng(png.substr(0, cut), DecodeLimits());
    ASSERT_FALSE(img.ok()) << "cut at " << cut << " of " << png.size();
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
  }
  EXPECT_THAT(DecodePng(png.substr(0, idat + 100), DecodeLimits()).status().message(),
              HasSubstr("truncated"));
}

TEST(PngDecoderTest, EmptyInput) {
  EXPECT_EQ(DecodePng("", DecodeLimits()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PngDecoderTest, ZeroSizeHeaderIsRejected) {
  for (auto [w, h] : {std::pair{0u, 5u}, std::pair{5u, 0u}, std::pair{0u, 0u}}) {
    absl::StatusOr<RgbImage> img = DecodePng(CraftPng(w, h), DecodeLimits());
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(img.status().message(), HasSubstr("zero")) << img.status();
  }
}

TEST(PngDecoderTest, HugeHeaderIsRefusedBeforeDecoding) {
  // 100000 x 100000 RGB would need 30 GB; the file holds almost no pixel data, so a
  // decoder that tried would fail with "truncated"/zlib errors, not the limit.
  absl::StatusOr<RgbImage> img = DecodePng(CraftPng(100000, 100000), DecodeLimits());
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(img.status().message(), HasSubstr("100000x100000"));
  EXPECT_THAT(img.status().message(), HasSubstr("limit"));
}

TEST(PngDecoderTest, ConfigurablePixelLimit) {
  std::string png = EncodePngRgb(20, 20, Noise(20 * 20 * 3, 3));
  DecodeLimits limits;
  limits.max_pixels = 399;
  EXPECT_THAT(DecodePng(png, limits).status().message(), HasSubstr("limit of 399"));
  limits.max_pixels = 400;
  EXPECT_TRUE(DecodePng(png, limits).ok());
}

TEST(PngDecoderTest, CorruptCrcAndZlibAreInvalidArgument) {
  std::string png = EncodePngRgb(8, 8, Noise(8 * 8 * 3, 4));
  std::string bad_crc = png;
  bad_crc[8 + 8 + 3] ^= 0x01;  // IHDR width byte, CRC now wrong
  EXPECT_EQ(DecodePng(bad_crc, DecodeLimits()).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string bad_zlib = png;
  const size_t idat = bad_zlib.find("IDAT");
  bad_zlib[idat + 4] = 0x00;  // zlib header byte: invalid compression method
  bad_zlib[idat + 5] = 0x00;
  FixPngCrcs(&bad_zlib);
  absl::StatusOr<RgbImage> img = DecodePng(bad_zlib, DecodeLimits());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
}

TEST(PngDecoderTest, CriticalChunkOrderErrors) {
  // IDAT before IHDR.
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + Chunk("IDAT", "xx") + Chunk("IEND", "");
  FixPngCrcs(&png);
  EXPECT_EQ(DecodePng(png, DecodeLimits()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
