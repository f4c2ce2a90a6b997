#include "services/vision/image/image_decoder.h"

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/vision/image/test_encoders.h"

namespace glm4v {
namespace {

using ::glm4v::testing::EncodeJpeg;
using ::glm4v::testing::EncodePngRgb;
using ::glm4v::testing::JpegSpec;
using ::testing::HasSubstr;

absl::Status DecodeStatus(const std::string& bytes, absl::string_view hint = "") {
  return DecodeImage(bytes, DecodeLimits(), hint).status();
}

TEST(ImageDecoderTest, DispatchesPngAndJpeg) {
  std::vector<uint8_t> rgb = {10, 20, 30, 40, 50, 60};
  absl::StatusOr<RgbImage> png = DecodeImage(EncodePngRgb(2, 1, rgb), DecodeLimits());
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->pixels, rgb);

  JpegSpec s;
  s.width = s.height = 8;
  s.samples.assign(8 * 8 * 3, 128);
  absl::StatusOr<RgbImage> jpg = DecodeImage(EncodeJpeg(s), DecodeLimits());
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  EXPECT_EQ(jpg->width, 8);
  EXPECT_NEAR(jpg->at(3, 3, 1), 128, 1);
}

TEST(ImageDecoderTest, MismatchedMimeHintTrustsBytes) {
  std::vector<uint8_t> rgb = {1, 2, 3};
  absl::StatusOr<RgbImage> img = DecodeImage(EncodePngRgb(1, 1, rgb), DecodeLimits(), "image/jpeg");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->pixels, rgb);
}

TEST(ImageDecoderTest, EmptyInput) {
  absl::Status st = DecodeStatus("");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("empty"));
}

TEST(ImageDecoderTest, UnsupportedFormatsAreNamed) {
  const std::pair<std::string, const char*> cases[] = {
      {"GIF89a\x01\x00\x01\x00", "GIF"},
      {"BM\x3a\0\0\0\0\0\0\0", "BMP"},
      {std::string("RIFF\x1a\0\0\0WEBPVP8 ", 16), "WebP"},
      {std::string("II*\0\x08\0\0\0", 8), "TIFF"},
  };
  for (const auto& [bytes, name] : cases) {
    absl::Status st = DecodeStatus(bytes);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(st.message(), HasSubstr(name));
    EXPECT_THAT(st.message(), HasSubstr("not supported"));
  }
}

TEST(ImageDecoderTest, UnknownFormat) {
  absl::Status st = DecodeStatus("just some text, not an image");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("unrecognized format"));
  absl::Status hinted = DecodeStatus("just some text", "image/png");
  EXPECT_EQ(hinted.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(hinted.message(), HasSubstr("declared as image/png"));
}

TEST(ImageDecoderTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 300; ++i) {
    std::string bytes(1 + rng() % 2000, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // Half of them get a valid signature so the real decoders see garbage too.
    if (i % 3 == 1) bytes.replace(0, std::min<size_t>(8, bytes.size()), "\x89PNG\r\n\x1a\n", 8);
    if (i % 3 == 2) bytes.replace(0, std::min<size_t>(3, bytes.size()), "\xFF\xD8\xFF", 3);
    absl::StatusOr<RgbImage> img = DecodeImage(bytes, DecodeLimits());
    ASSERT_FALSE(img.ok()) << "garbage " << i << " decoded";
    ASSERT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument) << img.status();
  }
}

TEST(ImageDecoderTest, InputByteLimit) {
  DecodeLimits limits;
  limits.max_input_bytes = 10;
  absl::Status st = DecodeImage(EncodePngRgb(1, 1, {1, 2, 3}), limits).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("limit of 10 bytes"));
}

}  // namespace
}  // namespace glm4v
