#include "services/common/feature_codec.h"

#include "gtest/gtest.h"

namespace glm4v {
namespace {

Tensor Sample() { return Tensor::FromF32({2, 3}, {1.0f, -2.5f, 3.140625f, 0.0f, 1e-3f, 7.0f}); }

TEST(FeatureCodecTest, Float32RoundTripIsExact) {
  internal::ImageFeatures wire;
  ASSERT_TRUE(EncodeFeatures(Sample(), internal::FEATURE_DTYPE_FLOAT32, &wire).ok());
  EXPECT_EQ(wire.rows(), 2u);
  EXPECT_EQ(wire.hidden_size(), 3u);
  EXPECT_EQ(wire.data().size(), 6 * sizeof(float));
  auto back = DecodeFeatures(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back->data<float>()[i], Sample().data<float>()[i]);
}

TEST(FeatureCodecTest, Bfloat16HalvesTheBytesAndRounds) {
  internal::ImageFeatures wire;
  ASSERT_TRUE(EncodeFeatures(Sample(), internal::FEATURE_DTYPE_BFLOAT16, &wire).ok());
  EXPECT_EQ(wire.dtype(), internal::FEATURE_DTYPE_BFLOAT16);
  EXPECT_EQ(wire.data().size(), 6 * sizeof(uint16_t));
  auto back = DecodeFeatures(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->data<float>()[1], -2.5f);           // exactly representable
  EXPECT_NEAR(back->data<float>()[4], 1e-3f, 1e-5f);  // rounded to 8 mantissa bits
}

// A bf16 feature cache: its tensors go out on a bf16 wire bit for bit (the same bytes as
// rounding the f32 features there), and widen exactly for an f32 wire.
TEST(FeatureCodecTest, Bf16CachedFeaturesEncodeAsTheF32OnesWould) {
  const Tensor cached = Sample().ToBF16();
  internal::ImageFeatures from_f32, from_bf16, widened;
  ASSERT_TRUE(EncodeFeatures(Sample(), internal::FEATURE_DTYPE_BFLOAT16, &from_f32).ok());
  ASSERT_TRUE(EncodeFeatures(cached, internal::FEATURE_DTYPE_BFLOAT16, &from_bf16).ok());
  EXPECT_EQ(from_bf16.data(), from_f32.data());
  EXPECT_EQ(from_bf16.dtype(), internal::FEATURE_DTYPE_BFLOAT16);
  ASSERT_TRUE(EncodeFeatures(cached, internal::FEATURE_DTYPE_FLOAT32, &widened).ok());
  EXPECT_EQ(widened.dtype(), internal::FEATURE_DTYPE_FLOAT32);
  auto back = DecodeFeatures(widened);
  ASSERT_TRUE(back.ok()) << back.status();
  const Tensor expect = cached.ToF32();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back->data<float>()[i], expect.data<float>()[i]);
  // Other dtypes are refused.
  EXPECT_FALSE(
      EncodeFeatures(Tensor::Empty(DType::kI32, {2, 3}), internal::FEATURE_DTYPE_FLOAT32, &widened)
          .ok());
}

TEST(FeatureCodecTest, RejectsMismatchedSizes) {
  internal::ImageFeatures wire;
  ASSERT_TRUE(EncodeFeatures(Sample(), internal::FEATURE_DTYPE_FLOAT32, &wire).ok());
  wire.set_rows(3);
  EXPECT_EQ(DecodeFeatures(wire).status().code(), absl::StatusCode::kInvalidArgument);
  wire.set_rows(0);
  EXPECT_EQ(DecodeFeatures(wire).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm4v
