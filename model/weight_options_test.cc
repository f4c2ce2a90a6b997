// The weight-storage options and the dtype flag parser used by the worker, generate and
// golden_check binaries.
#include "model/weight_options.h"

#include "gtest/gtest.h"
#include "kernels/backends.h"

namespace glm4v {
namespace {

TEST(WeightOptionsTest, ParsesDTypeFlagValues) {
  auto parsed = ParseFloatDTypeFlag("kv_cache_dtype", "auto");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->has_value());
  parsed = ParseFloatDTypeFlag("kv_cache_dtype", "f32");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(**parsed, DType::kF32);
  parsed = ParseFloatDTypeFlag("kv_cache_dtype", "bf16");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(**parsed, DType::kBF16);
}

TEST(WeightOptionsTest, RejectsOtherDTypeFlagValuesNamingTheFlag) {
  for (const char* bad : {"fp16", "BF16", "", "i32"}) {
    auto parsed = ParseFloatDTypeFlag("weight_dtype", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("--weight_dtype="), absl::string_view::npos)
        << parsed.status();
    EXPECT_NE(parsed.status().message().find("expected auto, f32 or bf16"),
              absl::string_view::npos);
  }
}

TEST(WeightOptionsTest, ParsesWeightDTypeFlagWithQuantizedFormats) {
  WeightLoadOptions options;
  ASSERT_TRUE(ParseWeightDTypeFlag("weight_dtype", "int8", &options).ok());
  EXPECT_EQ(options.quantization, WeightFormat::kInt8);
  EXPECT_FALSE(options.matrix_dtype.has_value());
  ASSERT_TRUE(ParseWeightDTypeFlag("weight_dtype", "int4", &options).ok());
  EXPECT_EQ(options.quantization, WeightFormat::kInt4);
  ASSERT_TRUE(ParseWeightDTypeFlag("weight_dtype", "bf16", &options).ok());
  EXPECT_EQ(options.quantization, WeightFormat::kFloat);
  EXPECT_EQ(options.matrix_dtype, DType::kBF16);
  const absl::Status bad = ParseWeightDTypeFlag("weight_dtype", "int3", &options);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--weight_dtype=int3: expected auto, f32, bf16, int8, int4 or fp8"),
            absl::string_view::npos)
      << bad;
}

TEST(WeightOptionsTest, MatrixDTypeDefaultsToTheCheckpointsOnAnF32Backend) {
  auto backend = GetBackend("cpu");
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto d = ResolveWeightDTypes({}, **backend);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->activation, DType::kF32);
  EXPECT_EQ(d->matrix, DType::kF32);

  WeightLoadOptions bf16;
  bf16.matrix_dtype = DType::kBF16;
  d = ResolveWeightDTypes(bf16, **backend);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->matrix, DType::kBF16);
  EXPECT_EQ(d->activation, DType::kF32);  // norms and biases stay in the activation dtype

  // Unset, an f32 backend keeps a bf16 checkpoint's matrices in bf16 and widens others to f32.
  d = ResolveWeightDTypes({}, **backend, DType::kBF16);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->matrix, DType::kBF16);
  EXPECT_EQ(d->activation, DType::kF32);
  d = ResolveWeightDTypes({}, **backend, DType::kF16);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->matrix, DType::kF32);
  WeightLoadOptions f32;
  f32.matrix_dtype = DType::kF32;
  d = ResolveWeightDTypes(f32, **backend, DType::kBF16);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->matrix, DType::kF32);  // an explicit choice wins

  WeightLoadOptions i32;
  i32.matrix_dtype = DType::kI32;
  d = ResolveWeightDTypes(i32, **backend);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
}

}  // namespace
}  // namespace glm4v
