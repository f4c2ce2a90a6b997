#include "services/vision/image/image_format.h"

#include <string>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(ImageFormatTest, DetectsSignatures) {
  EXPECT_EQ(DetectImageFormat(std::string("\x89PNG\r\n\x1a\n\0\0", 10)), ImageFormat::kPng);
  EXPECT_EQ(DetectImageFormat("\xFF\xD8\xFF\xE0rest"), ImageFormat::kJpeg);
  EXPECT_EQ(DetectImageFormat("GIF89a..."), ImageFormat::kGif);
  EXPECT_EQ(DetectImageFormat("GIF87a..."), ImageFormat::kGif);
  EXPECT_EQ(DetectImageFormat("BM\x36\x00"), ImageFormat::kBmp);
  EXPECT_EQ(DetectImageFormat(std::string("RIFF\x10\0\0\0WEBPVP8 ", 16)), ImageFormat::kWebp);
  EXPECT_EQ(DetectImageFormat(std::string("II*\0", 4)), ImageFormat::kTiff);
  EXPECT_EQ(DetectImageFormat(std::string("MM\0*", 4)), ImageFormat::kTiff);
}

TEST(ImageFormatTest, RejectsNearMissesAndShortInputs) {
  EXPECT_EQ(DetectImageFormat(""), ImageFormat::kUnknown);
  EXPECT_EQ(DetectImageFormat("\x89PNG\r\n"), ImageFormat::kUnknown);  // cut signature
  EXPECT_EQ(DetectImageFormat("\x89PNG\r\n\x1a\x0b"), ImageFormat::kUnknown);
  EXPECT_EQ(DetectImageFormat("\xFF\xD8"), ImageFormat::kUnknown);
  EXPECT_EQ(DetectImageFormat(std::string("RIFF\x10\0\0\0WAVE", 12)), ImageFormat::kUnknown);
  EXPECT_EQ(DetectImageFormat("hello world"), ImageFormat::kUnknown);
}

TEST(ImageFormatTest, NamesAndMimeTypes) {
  EXPECT_STREQ(ImageFormatName(ImageFormat::kPng), "PNG");
  EXPECT_STREQ(ImageFormatName(ImageFormat::kJpeg), "JPEG");
  EXPECT_STREQ(ImageFormatName(ImageFormat::kUnknown), "unknown");
  EXPECT_EQ(FormatFromMimeType("image/png"), ImageFormat::kPng);
  EXPECT_EQ(FormatFromMimeType(" Image/JPEG "), ImageFormat::kJpeg);
  EXPECT_EQ(FormatFromMimeType("image/jpg"), ImageFormat::kJpeg);
  EXPECT_EQ(FormatFromMimeType("text/plain"), ImageFormat::kUnknown);
}

}  // namespace
}  // namespace glm4v
