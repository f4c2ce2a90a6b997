#include "services/vision/image/bicubic_resize.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

// Gray image as RGB with the same value in all channels.
RgbImage Gray(int w, int h, const std::vector<int>& values) {
  RgbImage img{w, h, {}};
  for (int v : values) img.pixels.insert(img.pixels.end(), 3, static_cast<uint8_t>(v));
  return img;
}

std::vector<int> Channel(const RgbImage& img, int c) {
  std::vector<int> out;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) out.push_back(img.at(x, y, c));
  return out;
}

TEST(BicubicResizeTest, IdentityWhenSizeMatches) {
  RgbImage img{2, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
  RgbImage out = ResizeBicubic(img, 2, 2);
  EXPECT_EQ(out.width, 2);
  EXPECT_EQ(out.height, 2);
  EXPECT_EQ(out.pixels, img.pixels);
}

TEST(BicubicResizeTest, TapsForTwoToFourUpscale) {
  // scale 0.5: no widening, support 2. Output 0 has center 0.25; input centers 0.5
  // and 1.5 are 0.25 and 1.25 away: k(0.25) = 0.8671875, k(1.25) = -0.0703125,
  // normalized by their sum 0.796875 -> 1.0882353, -0.0882353.
  ResampleTaps taps = ComputeBicubicTaps(2, 4);
  EXPECT_EQ(taps.ksize, 5);
  EXPECT_EQ(taps.first[0], 0);
  EXPECT_EQ(taps.count[0], 2);
  EXPECT_EQ(taps.weights[0], 4564390);   // round(1.0882353 * 2^22)
  EXPECT_EQ(taps.weights[1], -370086);   // rounded away from zero
  int64_t sum = 0;
  for (int i = 0; i < taps.count[1]; ++i) sum += taps.weights[taps.ksize + i];
  EXPECT_NEAR(sum, 1 << kResamplePrecisionBits, 2);
}

TEST(BicubicResizeTest, UpscaleRowByHand) {
  // [100, 200] -> 4 wide: outputs 100*1.0882 - 200*0.0882 = 91.18, then
  // 100*0.7929 + 200*0.2071 = 120.71, mirrored 179.29, 208.82.
  RgbImage out = ResizeBicubic(Gray(2, 1, {100, 200}), 4, 1);
  EXPECT_EQ(Channel(out, 0), (std::vector<int>{91, 121, 179, 209}));
  EXPECT_EQ(Channel(out, 2), (std::vector<int>{91, 121, 179, 209}));
}

TEST(BicubicResizeTest, UpscaleOvershootIsClamped) {
  // A hard edge rings below 0 (-9.7, -7.8) and above 255 (262.8, 264.7).
  RgbImage out = ResizeBicubic(Gray(4, 1, {0, 0, 255, 255}), 7, 1);
  EXPECT_EQ(Channel(out, 1), (std::vector<int>{0, 0, 0, 128, 255, 255, 255}));
}

TEST(BicubicResizeTest, DownscaleWidensTheFilter) {
  // scale 2: support 4, kernel evaluated at distance / 2. Output 0 (center 1) sees
  // inputs 0..3 at distances 0.5, 0.5, 1.5, 2.5 -> k(0.25), k(0.25), k(0.75), k(1.25)
  // = 0.8671875, 0.8671875, 0.2265625, -0.0703125 (sum 1.890625):
  // (10*.8671875 + 50*.8671875 + 90*.2265625 - 200*.0703125) / 1.890625 = 30.87.
  RgbImage out = ResizeBicubic(Gray(4, 1, {10, 50, 90, 200}), 2, 1);
  EXPECT_EQ(Channel(out, 0), (std::vector<int>{31, 139}));
  // The same along the vertical axis.
  RgbImage col = ResizeBicubic(Gray(1, 4, {10, 50, 90, 200}), 1, 2);
  EXPECT_EQ(Channel(col, 0), (std::vector<int>{31, 139}));
}

TEST(BicubicResizeTest, NonIntegerDownscale) {
  // 5 -> 3 (scale 5/3): support 10/3, a 5-tap window for the middle pixel.
  RgbImage out = ResizeBicubic(Gray(5, 1, {0, 255, 0, 255, 0}), 3, 1);
  EXPECT_EQ(Channel(out, 0), (std::vector<int>{106, 126, 106}));
}

TEST(BicubicResizeTest, TwoDimensionalHorizontalThenVertical) {
  // Rows [10 200 30] [90 0 250] [40 120 60] -> horizontal to 2 wide (each row
  // rounded to uint8), then vertical to 2 high.
  RgbImage out = ResizeBicubic(Gray(3, 3, {10, 200, 30, 90, 0, 250, 40, 120, 60}), 2, 2);
  EXPECT_EQ(out.width, 2);
  EXPECT_EQ(out.height, 2);
  EXPECT_EQ(Channel(out, 0), (std::vector<int>{70, 122, 61, 113}));
  // Upscale checkerboard 2x2 -> 3x3: the middle row/column average to 128.
  RgbImage up = ResizeBicubic(Gray(2, 2, {0, 255, 255, 0}), 3, 3);
  EXPECT_EQ(Channel(up, 1), (std::vector<int>{0, 128, 255, 128, 128, 128, 255, 128, 0}));
}

TEST(BicubicResizeTest, ChannelsStayIndependent) {
  RgbImage img{2, 1, {100, 0, 255, 200, 0, 255}};
  RgbImage out = ResizeBicubic(img, 4, 1);
  EXPECT_EQ(Channel(out, 0), (std::vector<int>{91, 121, 179, 209}));
  EXPECT_EQ(Channel(out, 1), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(Channel(out, 2), (std::vector<int>{255, 255, 255, 255}));
}

TEST(BicubicResizeTest, ConstantImageStaysConstant) {
  RgbImage img = Gray(37, 23, std::vector<int>(37 * 23, 77));
  for (auto [w, h] : {std::pair{112, 112}, std::pair{5, 9}, std::pair{37, 4}}) {
    RgbImage out = ResizeBicubic(img, w, h);
    ASSERT_EQ(out.pixels.size(), static_cast<size_t>(w) * h * 3);
    for (uint8_t v : out.pixels) ASSERT_EQ(v, 77) << w << "x" << h;
  }
}

}  // namespace
}  // namespace glm4v
