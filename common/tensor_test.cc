#include "common/tensor.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DTypeTest, SizesNamesAndParsing) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kU8), 1u);
  EXPECT_EQ(DTypeName(DType::kBF16), "bf16");
  EXPECT_EQ(*DTypeFromSafetensorsName("BF16"), DType::kBF16);
  EXPECT_EQ(*DTypeFromSafetensorsName("F16"), DType::kF16);
  EXPECT_EQ(*DTypeFromSafetensorsName("I64"), DType::kI64);
  EXPECT_FALSE(DTypeFromSafetensorsName("F8_E4M3").ok());
  EXPECT_FALSE(DTypeFromSafetensorsName("bf16").ok());
}

TEST(DTypeTest, F16KnownValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(Bits(F16ToF32(0x8000)), 0x80000000u);         // -0
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)) && F16ToF32(0x7c00) > 0);
  EXPECT_TRUE(std::isinf(F16ToF32(0xfc00)) && F16ToF32(0xfc00) < 0);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));

  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);  // below the halfway point to 65536
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // halfway, ties to even -> inf
  EXPECT_EQ(F32ToF16(1e9f), 0x7c00);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp tie -> even (2)
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(F32ToF16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the normals
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even keeps 1.
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  const uint16_t nan = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
  // A signalling NaN whose payload sits only in the low bits must not become inf.
  EXPECT_NE(F32ToF16(FromBits(0x7f800001u)) & 0x3ff, 0);
}

TEST(DTypeTest, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f)))) << h;
      continue;
    }
    ASSERT_EQ(F32ToF16(f), h) << "half 0x" << std::hex << h;
  }
}

// Compares against double-precision rounding for many random floats in the half range.
TEST(DTypeTest, F32ToF16MatchesNearestEven) {
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    // Exponents spanning subnormal to overflow territory.
    const float f = FromBits((state & 0x807fffffu) | ((100u + (state >> 24) % 45u) << 23));
    const uint16_t h = F32ToF16(f);
    const double x = f;
    const double got = F16ToF32(h);
    if (std::isinf(got)) {
      ASSERT_GE(std::fabs(x), 65520.0) << f;
      continue;
    }
    // Neighbours of h (stepping the magnitude) must not be closer to x.
    for (int step : {-1, 1}) {
      const int mag = (h & 0x7fff) + step;
      if (mag < 0 || mag > 0x7bff) continue;
      const double other = F16ToF32(static_cast<uint16_t>((h & 0x8000) | mag));
      const double d_got = std::fabs(got - x), d_other = std::fabs(other - x);
      ASSERT_TRUE(d_got < d_other || (d_got == d_other && (h & 1) == 0))
          << "f=" << f << " h=" << h << " other=" << other;
    }
  }
}

TEST(DTypeTest, BF16Conversions) {
  EXPECT_EQ(BF16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0.
  EXPECT_EQ(F32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(F32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(FromBits(0x7f800001u)))));
  EXPECT_TRUE(std::isinf(BF16ToF32(F32ToBF16(std::numeric_limits<float>::infinity()))));
}

TEST(TensorTest, DefaultIsUndefined) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.nbytes(), 0u);
  EXPECT_EQ(t.DebugString(), "undefined");
}

TEST(TensorTest, FactoriesAlignmentAndStrides) {
  Tensor t = Tensor::Zeros(DType::kBF16, {3, 5, 7});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{35, 7, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.numel(), 105);
  EXPECT_EQ(t.nbytes(), 210u);
  EXPECT_EQ(t.dim(-1), 7);
  for (int i = 0; i < 105; ++i) EXPECT_EQ(t.data<uint16_t>()[i], 0);
  EXPECT_EQ(t.DebugString(), "bf16[3,5,7]");
  Tensor e = Tensor::Empty(DType::kF32, {0, 4});
  EXPECT_TRUE(e.defined());
  EXPECT_EQ(e.numel(), 0);
  EXPECT_NE(e.raw_data(), nullptr);

  Tensor i32 = Tensor::FromI32({2}, {7, -8});
  EXPECT_EQ(i32.dtype(), DType::kI32);
  EXPECT_EQ(i32.data<int32_t>()[1], -8);
  Tensor i64 = Tensor::FromI64({1}, {int64_t{1} << 40});
  EXPECT_EQ(i64.data<int64_t>()[0], int64_t{1} << 40);
}

TEST(TensorTest, BorrowKeepsOwnerAlive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  std::weak_ptr<std::vector<float>> weak = owner;
  Tensor t = Tensor::Borrow(DType::kF32, {2, 3}, owner->data(), owner);
  owner.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.data<float>()[5], 6.0f);
  t = Tensor();
  EXPECT_TRUE(weak.expired());
}

TEST(TensorTest, ReshapeSharesStorageAndInfers) {
  Tensor t = Tensor::FromF32({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  absl::StatusOr<Tensor> r = t.Reshape({3, -1});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shape(), (Shape{3, 4}));
  EXPECT_EQ(r->strides(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(r->raw_data(), t.raw_data());
  EXPECT_FALSE(t.Reshape({5, -1}).ok());
  EXPECT_FALSE(t.Reshape({-1, -1}).ok());
  EXPECT_FALSE(t.Reshape({4, 4}).ok());
  EXPECT_FALSE(t.Reshape({-2, -6}).ok());
  EXPECT_FALSE(Tensor().Reshape({1}).ok());
  EXPECT_TRUE(t.Reshape({12}).ok());
}

TEST(TensorTest, SliceRowsIsAView) {
  Tensor t = Tensor::FromF32({4, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor s = t.SliceRows(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.data<float>(), t.data<float>() + 2);
  EXPECT_EQ(s.data<float>()[3], 5.0f);
  t.data<float>()[2] = 42;
  EXPECT_EQ(s.data<float>()[0], 42.0f);
  EXPECT_EQ(t.SliceRows(4, 4).numel(), 0);
}

TEST(TensorTest, ConversionsAndClone) {
  Tensor f = Tensor::FromF32({3}, {1.0f, -0.5f, 3.140625f});
  Tensor b = f.ToBF16();
  EXPECT_EQ(b.dtype(), DType::kBF16);
  EXPECT_EQ(b.data<uint16_t>()[0], 0x3f80);
  Tensor back = b.ToF32();
  EXPECT_EQ(back.dtype(), DType::kF32);
  EXPECT_EQ(back.data<float>()[1], -0.5f);
  EXPECT_EQ(back.data<float>()[2], 3.140625f);  // exactly representable in bf16

  Tensor h = Tensor::Empty(DType::kF16, {2});
  h.data<uint16_t>()[0] = 0x3c00;
  h.data<uint16_t>()[1] = 0x0001;
  Tensor hf = h.ToF32();
  EXPECT_EQ(hf.data<float>()[0], 1.0f);
  EXPECT_EQ(hf.data<float>()[1], std::ldexp(1.0f, -24));

  EXPECT_EQ(Tensor::FromI64({1}, {-3}).ToF32().data<float>()[0], -3.0f);
  Tensor u8 = Tensor::Zeros(DType::kU8, {1});
  u8.data<uint8_t>()[0] = 200;
  EXPECT_EQ(u8.ToF32().data<float>()[0], 200.0f);

  Tensor c = f.Clone();
  EXPECT_NE(c.raw_data(), f.raw_data());
  c.data<float>()[0] = 9;
  EXPECT_EQ(f.data<float>()[0], 1.0f);

  // Borrowed data at an odd address (as in an mmap'd file) still converts.
  alignas(4) unsigned char raw[7] = {0, 0x80, 0x3f, 0x00, 0xc0, 0, 0};
  Tensor odd = Tensor::Borrow(DType::kBF16, {2}, raw + 1, nullptr);
  Tensor of = odd.ToF32();
  EXPECT_EQ(of.data<float>()[0], 1.0f);
  EXPECT_EQ(of.data<float>()[1], -2.0f);
}

TEST(TensorTest, ShapeHelpers) {
  EXPECT_EQ(ShapeToString({}), "[]");
  EXPECT_EQ(ShapeToString({4, 64}), "[4,64]");
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(NumElements({3, 0}), 0);
}

TEST(TensorDeathTest, SliceOutOfRangeAborts) {
  Tensor t = Tensor::Zeros(DType::kF32, {2, 2});
  EXPECT_DEATH(t.SliceRows(1, 3), "out of range");
}

}  // namespace
}  // namespace glm4v
