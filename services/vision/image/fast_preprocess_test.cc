// The vectorized, banded and pipelined preprocessing against straightforward scalar loops of
// Pillow's Resample.c (the first implementation), bit for bit, at every instruction-set level
// this CPU has; and the JPEG pipeline's error paths.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/simd_level_testing.h"
#include "services/vision/image/bicubic_resize.h"
#include "services/vision/image/clip_normalize.h"
#include "services/vision/image/jpeg_band_pipeline.h"
#include "services/vision/image/jpeg_decoder.h"
#include "services/vision/image/preprocess.h"
#include "services/vision/image/test_encoders.h"

namespace glm4v {
namespace {

uint8_t Clip(int64_t acc) {
  const int64_t v = acc >> kResamplePrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Pillow's two passes, one sample at a time (horizontal first, each pass skipped when the size
// matches).
RgbImage ReferenceResize(const RgbImage& in, int width, int height) {
  RgbImage h = in;
  if (width != in.width) {
    const ResampleTaps taps = ComputeBicubicTaps(in.width, width);
    h.width = width;
    h.pixels.assign(static_cast<size_t>(width) * in.height * 3, 0);
    for (int y = 0; y < in.height; ++y) {
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < 3; ++c) {
          int64_t acc = 1 << (kResamplePrecisionBits - 1);
          for (int i = 0; i < taps.count[x]; ++i) {
            acc += int64_t{in.at(taps.first[x] + i, y, c)} * taps.weights[x * taps.ksize + i];
          }
          h.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] = Clip(acc);
        }
      }
    }
  }
  if (height == in.height) return h;
  const ResampleTaps taps = ComputeBicubicTaps(in.height, height);
  RgbImage v;
  v.width = width;
  v.height = height;
  v.pixels.assign(static_cast<size_t>(width) * height * 3, 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        int64_t acc = 1 << (kResamplePrecisionBits - 1);
        for (int i = 0; i < taps.count[y]; ++i) {
          acc += int64_t{h.at(x, taps.first[y] + i, c)} * taps.weights[y * taps.ksize + i];
        }
        v.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] = Clip(acc);
      }
    }
  }
  return v;
}

RgbImage RandomImage(int width, int height, uint32_t seed) {
  std::mt19937 rng(seed);
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  // Smooth ramps plus noise and hard edges (overshoot and clamping both happen).
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        int v = (x * 7 + y * 3 + c * 50) % 256 + static_cast<int>(rng() % 41) - 20;
        if ((x / 5 + y / 3) % 7 == 0) v = (c == 1) ? 255 : 0;
        image.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
    }
  }
  return image;
}

class FastPreprocessTest : public cpu::SimdLevelTest {};

TEST_P(FastPreprocessTest, ResizeIsBitIdenticalToScalarPillowLoops) {
  struct Case {
    int in_w, in_h, out_w, out_h;
  };
  // Down and up, heights off the 16-row bands, widths off the 16-byte transposes, one axis only.
  const Case cases[] = {{403, 302, 112, 112}, {97, 61, 33, 45},  {20, 17, 57, 40},
                        {64, 64, 64, 31},     {50, 33, 19, 33},  {1, 1, 7, 5},
                        {300, 5, 112, 112},   {7, 300, 3, 112},  {129, 130, 131, 129}};
  for (const Case& c : cases) {
    const RgbImage in = RandomImage(c.in_w, c.in_h, c.in_w * 1000 + c.in_h);
    const RgbImage expected = ReferenceResize(in, c.out_w, c.out_h);
    const RgbImage got = ResizeBicubic(in, c.out_w, c.out_h);
    ASSERT_EQ(got.width, c.out_w);
    ASSERT_EQ(got.height, c.out_h);
    EXPECT_EQ(got.pixels, expected.pixels)
        << c.in_w << "x" << c.in_h << " -> " << c.out_w << "x" << c.out_h;
  }
}

TEST_P(FastPreprocessTest, PreprocessRgbFusesVerticalPassAndNormalization) {
  for (int size : {112, 37}) {
    const RgbImage in = RandomImage(250, 190, size);
    absl::StatusOr<PixelTensor> got = PreprocessRgb(in, size);
    ASSERT_TRUE(got.ok()) << got.status();
    const PixelTensor expected = NormalizeClip(ReferenceResize(in, size, size));
    EXPECT_EQ(got->data, expected.data) << size;
  }
  // Already square at the size: normalization only.
  const RgbImage square = RandomImage(40, 40, 9);
  EXPECT_EQ(PreprocessRgb(square, 40)->data, NormalizeClip(square).data);
}

TEST_P(FastPreprocessTest, JpegPipelineMatchesDecodeThenResize) {
  for (auto [w, h, size] : {std::tuple{640, 483, 112}, {200, 40, 112}, {112, 300, 112},
                            {90, 90, 112}, {33, 17, 16}}) {
    testing::JpegSpec spec;
    spec.width = w;
    spec.height = h;
    spec.samples = RandomImage(w, h, w + h).pixels;
    const std::string jpeg = testing::EncodeJpeg(spec);
    ASSERT_FALSE(jpeg.empty());
    absl::StatusOr<RgbImage> decoded = DecodeJpeg(jpeg, DecodeLimits());
    ASSERT_TRUE(decoded.ok());
    absl::StatusOr<RgbImage> rows = DecodeJpegResizedToWidth(jpeg, size, DecodeLimits());
    ASSERT_TRUE(rows.ok()) << rows.status();
    EXPECT_EQ(rows->pixels, ReferenceResize(*decoded, size, h).pixels) << w << "x" << h;
    absl::StatusOr<PixelTensor> tensor = PreprocessImage(jpeg, size);
    ASSERT_TRUE(tensor.ok());
    EXPECT_EQ(tensor->data, NormalizeClip(ReferenceResize(*decoded, size, size)).data);
  }
}

GLM4V_INSTANTIATE_SIMD_LEVELS(FastPreprocessTest);

TEST(JpegPipelineTest, TruncatedAndOversizedJpegsFailCleanly) {
  testing::JpegSpec spec;
  spec.width = 500;  // 32 bands: the decoder waits on ring slots before the data runs out
  spec.height = 512;
  spec.samples = RandomImage(500, 512, 3).pixels;
  const std::string jpeg = testing::EncodeJpeg(spec);
  for (size_t keep : {jpeg.size() / 10, jpeg.size() / 2, jpeg.size() - 3}) {
    absl::StatusOr<PixelTensor> t = PreprocessImage(jpeg.substr(0, keep), 112);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << keep;
  }
  DecodeLimits small;
  small.max_pixels = 1000;
  absl::StatusOr<PixelTensor> t = PreprocessImage(jpeg, 112, small);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("limit"), std::string::npos) << t.status();
}

TEST(JpegPipelineTest, GrayAndCmykJpegsTakeThePipelineToo) {
  for (int components : {1, 4}) {
    testing::JpegSpec spec;
    spec.width = 150;
    spec.height = 70;
    spec.components = components;
    std::mt19937 rng(components);
    spec.samples.resize(150 * 70 * components);
    for (uint8_t& v : spec.samples) v = static_cast<uint8_t>(rng());
    const std::string jpeg = testing::EncodeJpeg(spec);
    absl::StatusOr<RgbImage> decoded = DecodeJpeg(jpeg, DecodeLimits());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    absl::StatusOr<PixelTensor> tensor = PreprocessImage(jpeg, 64);
    ASSERT_TRUE(tensor.ok()) << tensor.status();
    EXPECT_EQ(tensor->data, NormalizeClip(ReferenceResize(*decoded, 64, 64)).data) << components;
  }
}

TEST(JpegPipelineTest, DctScalingDecodesSmallerAndStaysClose) {
  // 480x360 -> 112: the decode can run at 1/2 (240x180) and 1/4 (120x90 < 112 rows: no).
  testing::JpegSpec spec;
  spec.width = 480;
  spec.height = 360;
  spec.samples.resize(480 * 360 * 3);
  for (int y = 0; y < 360; ++y) {
    for (int x = 0; x < 480; ++x) {
      for (int c = 0; c < 3; ++c) {
        spec.samples[(y * 480 + x) * 3 + c] = static_cast<uint8_t>((x / 2 + y / 3 + 40 * c) % 256);
      }
    }
  }
  const std::string jpeg = testing::EncodeJpeg(spec);
  absl::StatusOr<RgbImage> half = DecodeJpegResizedToWidth(jpeg, 240, DecodeLimits(), 112);
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->height, 180);  // decoded at 1/2: already 240 wide, so no horizontal pass
  PreprocessOptions options;
  options.jpeg_dct_scaling = true;
  absl::StatusOr<PixelTensor> fast = PreprocessImage(jpeg, 112, DecodeLimits(), "", options);
  absl::StatusOr<PixelTensor> exact = PreprocessImage(jpeg, 112);
  ASSERT_TRUE(fast.ok() && exact.ok());
  ASSERT_EQ(fast->data.size(), exact->data.size());
  double mean = 0;
  for (size_t i = 0; i < fast->data.size(); ++i) mean += std::fabs(fast->data[i] - exact->data[i]);
  mean /= fast->data.size();
  EXPECT_GT(mean, 0.0);   // not the exact path
  EXPECT_LT(mean, 0.05);  // ~3 of 255 levels on this smooth image
  // An image smaller than twice the target is decoded at full size: exact.
  EXPECT_EQ(PreprocessImage(jpeg, 300, DecodeLimits(), "", options)->data,
            PreprocessImage(jpeg, 300)->data);
}

}  // namespace
}  // namespace glm4v
