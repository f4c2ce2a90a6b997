#include "services/vision/feature_cache.h"

#include "gtest/gtest.h"

namespace glm4v {
namespace {

std::shared_ptr<const Tensor> Features(float value) {
  return std::make_shared<const Tensor>(Tensor::FromF32({1, 1}, {value}));
}

TEST(FeatureCacheTest, EvictsTheLeastRecentlyUsed) {
  FeatureCache cache(2);
  cache.Insert("a", Features(1));
  cache.Insert("b", Features(2));
  ASSERT_NE(cache.Find("a"), nullptr);  // "b" is now the oldest
  cache.Insert("c", Features(3));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Find("b"), nullptr);
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("a")->data<float>()[0], 1.0f);
  EXPECT_EQ(cache.Find("c")->data<float>()[0], 3.0f);
}

TEST(FeatureCacheTest, ReinsertReplacesTheValue) {
  FeatureCache cache(2);
  cache.Insert("a", Features(1));
  cache.Insert("a", Features(5));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Find("a")->data<float>()[0], 5.0f);
}

TEST(FeatureCacheTest, ZeroCapacityCachesNothing) {
  FeatureCache cache(0);
  cache.Insert("a", Features(1));
  EXPECT_EQ(cache.Find("a"), nullptr);
}

}  // namespace
}  // namespace glm4v
