#include "services/vision/image/jpeg_decoder.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/vision/image/png_decoder.h"
#include "services/vision/image/test_encoders.h"

namespace glm4v {
namespace {

using ::glm4v::testing::EncodeJpeg;
using ::glm4v::testing::JpegSpec;
using ::testing::HasSubstr;

constexpr char kDataDir[] = "tests/data/tiny-glm4v/";

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Smooth gradient: JPEG reproduces it closely at high quality.
JpegSpec Gradient(int w, int h, int components) {
  JpegSpec s;
  s.width = w;
  s.height = h;
  s.components = components;
  s.quality = 100;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < components; ++c)
        s.samples.push_back(static_cast<uint8_t>(40 + 4 * x + 3 * y + 30 * c));
  return s;
}

int MaxAbsDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Offset of the SOF0/SOF2 marker segment (FF C0 / FF C2).
size_t FindSof(const std::string& jpeg) {
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (uint8_t(jpeg[i]) == 0xFF && (uint8_t(jpeg[i + 1]) == 0xC0 || uint8_t(jpeg[i + 1]) == 0xC2))
      return i;
  }
  return std::string::npos;
}

std::string WithSofSize(std::string jpeg, int width, int height) {
  const size_t sof = FindSof(jpeg);
  // FF C0, length(2), precision(1), height(2), width(2)
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xFF);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xFF);
  return jpeg;
}

TEST(JpegDecoderTest, RgbCloseToSource) {
  JpegSpec s = Gradient(16, 16, 3);
  absl::StatusOr<RgbImage> img = DecodeJpeg(EncodeJpeg(s), DecodeLimits());
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->width, 16);
  EXPECT_EQ(img->height, 16);
  EXPECT_LE(MaxAbsDiff(img->pixels, s.samples), 4);
}

TEST(JpegDecoderTest, GrayIsReplicated) {
  JpegSpec s = Gradient(9, 7, 1);  // sizes not multiples of 8
  absl::StatusOr<RgbImage> img = DecodeJpeg(EncodeJpeg(s), DecodeLimits());
  ASSERT_TRUE(img.ok()) << img.status();
  ASSERT_EQ(img->pixels.size(), 9u * 7 * 3);
  for (int i = 0; i < 9 * 7; ++i) {
    EXPECT_EQ(img->pixels[3 * i], img->pixels[3 * i + 1]);
    EXPECT_EQ(img->pixels[3 * i], img->pixels[3 * i + 2]);
    EXPECT_LE(std::abs(img->pixels[3 * i] - s.samples[i]), 2);
  }
}

TEST(JpegDecoderTest, AdobeCmykIsConvertedLikePil) {
  // Stored (Adobe-inverted) CMYK samples; PIL: c' = 255 - c, then
  // r = (255 - k') - (255 - k') * c' / 255 = k * c / 255 in stored terms.
  JpegSpec s;
  s.width = s.height = 16;
  s.components = 4;
  s.quality = 100;
  for (int i = 0; i < 256; ++i) s.samples.insert(s.samples.end(), {200, 100, 50, 128});
  absl::StatusOr<RgbImage> img = DecodeJpeg(EncodeJpeg(s), DecodeLimits());
  ASSERT_TRUE(img.ok()) << img.status();
  const double r = 128 * 200 / 255.0, g = 128 * 100 / 255.0, b = 128 * 50 / 255.0;
  EXPECT_NEAR(img->at(5, 5, 0), r, 2.0);
  EXPECT_NEAR(img->at(5, 5, 1), g, 2.0);
  EXPECT_NEAR(img->at(5, 5, 2), b, 2.0);
}

TEST(JpegDecoderTest, ProgressiveDecodesAndScanLimitApplies) {
  JpegSpec s = Gradient(24, 16, 3);
  s.progressive = true;
  const std::string jpeg = EncodeJpeg(s);
  absl::StatusOr<RgbImage> img = DecodeJpeg(jpeg, DecodeLimits());
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_LE(MaxAbsDiff(img->pixels, s.samples), 4);
  DecodeLimits limits;
  limits.max_jpeg_scans = 2;  // simple progression writes ~10 scans for color
  absl::StatusOr<RgbImage> limited = DecodeJpeg(jpeg, limits);
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(limited.status().message(), HasSubstr("scans"));
}

TEST(JpegDecoderTest, GoldenJpegMatchesItsPngSource) {
  absl::StatusOr<RgbImage> jpg = DecodeJpeg(ReadFile(std::string(kDataDir) + "image0.jpg"),
                                            DecodeLimits());
  absl::StatusOr<RgbImage> png = DecodePng(ReadFile(std::string(kDataDir) + "image0.png"),
                                           DecodeLimits());
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(jpg->width, 200);
  EXPECT_EQ(jpg->height, 150);
  double sum = 0;
  for (size_t i = 0; i < jpg->pixels.size(); ++i) sum += std::abs(jpg->pixels[i] - png->pixels[i]);
  EXPECT_LT(sum / jpg->pixels.size(), 6.0);  // quality 95: small mean error
}

TEST(JpegDecoderTest, TruncatedAtManyPointsIsInvalidArgument) {
  JpegSpec s = Gradient(64, 48, 3);
  const std::string jpeg = EncodeJpeg(s);
  std::vector<size_t> cuts = {1, 3, 4, 20, 100, FindSof(jpeg) + 4};
  // Inside the entropy-coded data (stops well before the final EOI marker).
  for (double f : {0.6, 0.75, 0.9, 0.97}) cuts.push_back(size_t(f * jpeg.size()));
  for (size_t cut : cuts) {
    ASSERT_LT(cut, jpeg.size() - 2);
    absl::StatusOr<RgbImage> img = DecodeJpeg(jpeg.substr(0, cut), DecodeLimits());
    ASSERT_FALSE(img.ok()) << "cut at " << cut << " of " << jpeg.size();
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
  }
  EXPECT_THAT(DecodeJpeg(jpeg.substr(0, jpeg.size() * 3 / 4), DecodeLimits()).status().message(),
              HasSubstr("truncated"));
}

TEST(JpegDecoderTest, ZeroSizeSofIsRejected) {
  const std::string jpeg = EncodeJpeg(Gradient(8, 8, 3));
  for (auto [w, h] : {std::pair{0, 8}, std::pair{8, 0}}) {
    absl::StatusOr<RgbImage> img = DecodeJpeg(WithSofSize(jpeg, w, h), DecodeLimits());
    ASSERT_FALSE(img.ok()) << w << "x" << h;
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
    EXPECT_THAT(img.status().message(), HasSubstr("Empty JPEG image"));
  }
}

TEST(JpegDecoderTest, HugeSofIsRefusedBeforeDecoding) {
  // 60000 x 60000 (3.6 gigapixels) with an 8x8 image's worth of scan data.
  const std::string jpeg = WithSofSize(EncodeJpeg(Gradient(8, 8, 3)), 60000, 60000);
  absl::StatusOr<RgbImage> img = DecodeJpeg(jpeg, DecodeLimits());
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(img.status().message(), HasSubstr("60000x60000"));
  EXPECT_THAT(img.status().message(), HasSubstr("limit"));
}

TEST(JpegDecoderTest, ConfigurablePixelLimit) {
  const std::string jpeg = EncodeJpeg(Gradient(10, 10, 3));
  DecodeLimits limits;
  limits.max_pixels = 99;
  EXPECT_THAT(DecodeJpeg(jpeg, limits).status().message(), HasSubstr("limit of 99"));
  limits.max_pixels = 100;
  EXPECT_TRUE(DecodeJpeg(jpeg, limits).ok());
}

TEST(JpegDecoderTest, GarbageAfterSoiAndEmpty) {
  EXPECT_EQ(DecodeJpeg("", DecodeLimits()).status().code(), absl::StatusCode::kInvalidArgument);
  std::string garbage = "\xFF\xD8\xFF";
  for (int i = 0; i < 500; ++i) garbage.push_back(static_cast<char>((i * 37) ^ 0x5A));
  absl::StatusOr<RgbImage> img = DecodeJpeg(garbage, DecodeLimits());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
}

}  // namespace
}  // namespace glm4v
