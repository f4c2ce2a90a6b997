#include "services/vision/image/clip_normalize.h"

#include "gtest/gtest.h"

namespace glm4v {
namespace {

TEST(ClipNormalizeTest, ValuesAndChwLayout) {
  // 2x1 image: pixel 0 = (0, 128, 255), pixel 1 = (255, 0, 64).
  RgbImage image{2, 1, {0, 128, 255, 255, 0, 64}};
  PixelTensor t = NormalizeClip(image);
  ASSERT_EQ(t.channels, 3);
  ASSERT_EQ(t.height, 1);
  ASSERT_EQ(t.width, 2);
  ASSERT_EQ(t.data.size(), 6u);
  const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
  const double stdv[3] = {0.26862954, 0.26130258, 0.27577711};
  const int expected_u8[3][2] = {{0, 255}, {128, 0}, {255, 64}};  // [c][x]
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 2; ++x) {
      const double want = (expected_u8[c][x] / 255.0 - mean[c]) / stdv[c];
      EXPECT_NEAR(t.at(c, 0, x), want, 1e-6) << "c=" << c << " x=" << x;
    }
  }
  // Spot values: black red channel and white red channel.
  EXPECT_NEAR(t.data[0], -1.7922625, 1e-6);
  EXPECT_NEAR(t.data[1], 1.9303361, 1e-6);
}

TEST(ClipNormalizeTest, SameFloat32OpsAsTorchvision) {
  // ToTensor: float(u8) / 255 in float32; Normalize: (x - mean) / std in float32.
  RgbImage image{1, 1, {37, 200, 91}};
  PixelTensor t = NormalizeClip(image);
  const float r = (37.0f / 255.0f - 0.48145466f) / 0.26862954f;
  const float g = (200.0f / 255.0f - 0.4578275f) / 0.26130258f;
  const float b = (91.0f / 255.0f - 0.40821073f) / 0.27577711f;
  EXPECT_EQ(t.data[0], r);
  EXPECT_EQ(t.data[1], g);
  EXPECT_EQ(t.data[2], b);
}

TEST(ClipNormalizeTest, CustomStatistics) {
  RgbImage image{1, 1, {255, 0, 51}};
  PixelTensor t = Normalize(image, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  EXPECT_FLOAT_EQ(t.data[0], 1.0f);
  EXPECT_FLOAT_EQ(t.data[1], -1.0f);
  EXPECT_FLOAT_EQ(t.data[2], -0.6f);
}

}  // namespace
}  // namespace glm4v
