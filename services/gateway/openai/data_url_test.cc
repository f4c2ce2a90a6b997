#include "services/gateway/openai/data_url.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace glm4v::openai {
namespace {

// Test-side encoder (the production code only decodes), to round-trip a real image.
std::string EncodeBase64(const std::string& in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t w = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(w >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    const uint32_t w = uint8_t(in[i]) << 16;
    out += {kAlphabet[w >> 18], kAlphabet[(w >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t w = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[w >> 18], kAlphabet[(w >> 12) & 63], kAlphabet[(w >> 6) & 63], '='};
  }
  return out;
}

TEST(DataUrlTest, DecodesPng) {
  std::ifstream f("tests/data/tiny-glm4v/image0.png", std::ios::binary);
  ASSERT_TRUE(f) << "missing test image";
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string png = ss.str();
  auto image = DecodeImageUrl("data:image/png;base64," + EncodeBase64(png));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bytes, png);
  EXPECT_EQ(image->mime_type, "image/png");
}

TEST(DataUrlTest, MimeTypes) {
  EXPECT_EQ(DecodeImageUrl("data:image/jpeg;base64,AAAA")->mime_type, "image/jpeg");
  EXPECT_EQ(DecodeImageUrl("data:IMAGE/JPG;base64,AAAA")->mime_type, "image/jpeg");
  EXPECT_EQ(DecodeImageUrl("data:application/octet-stream;base64,AAAA")->mime_type, "");
  EXPECT_EQ(DecodeImageUrl("data:;base64,AAAA")->mime_type, "");
  EXPECT_EQ(DecodeImageUrl("data:image/png;name=x.png;base64,AAAA")->mime_type, "image/png");
  auto webp = DecodeImageUrl("data:image/webp;base64,AAAA");
  EXPECT_EQ(webp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(webp.status().message().find("image/webp"), absl::string_view::npos);
}

TEST(DataUrlTest, ToleratesWrappingAndMissingPadding) {
  EXPECT_EQ(DecodeImageUrl("data:image/png;base64,aGVs\nbG8=")->bytes, "hello");
  EXPECT_EQ(DecodeImageUrl("data:image/png;base64,aGVsbG8")->bytes, "hello");
  EXPECT_EQ(DecodeImageUrl("data:image/png;base64,aGk")->bytes, "hi");
}

TEST(DataUrlTest, RejectsHttpUrlsWithAClearMessage) {
  for (const char* url : {"http://example.com/a.png", "HTTPS://example.com/a.png"}) {
    auto r = DecodeImageUrl(url);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_NE(r.status().message().find("data URL"), absl::string_view::npos);
    EXPECT_NE(r.status().message().find("not fetched"), absl::string_view::npos);
  }
}

TEST(DataUrlTest, RejectsMalformed) {
  for (const char* url : {"", "file:///etc/passwd", "data:image/png,rawbytes",
                          "data:image/png;base64", "data:image/png;base64,",
                          "data:image/png;base64,a", "data:image/png;base64,aGVsbG8*",
                          "data:image/png;base64,aG=sbG8=", "data:image/png;base64,aGVsbG9="}) {
    EXPECT_EQ(DecodeImageUrl(url).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

}  // namespace
}  // namespace glm4v::openai
