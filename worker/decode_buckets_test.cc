#include "worker/decode_buckets.h"

#include <vector>

#include "gtest/gtest.h"

namespace glm4v::worker {
namespace {

TEST(DecodeBucketsTest, PowersOfTwoThenMultiplesOfEight) {
  EXPECT_EQ(DecodeBuckets(64), (std::vector<int>{1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64}));
  EXPECT_EQ(DecodeBuckets(1), (std::vector<int>{1}));
  EXPECT_EQ(DecodeBuckets(3), (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(DecodeBuckets(9), (std::vector<int>{1, 2, 4, 8, 16}));
  EXPECT_TRUE(DecodeBuckets(0).empty());
}

TEST(DecodeBucketsTest, SmallestBucketThatFits) {
  const std::vector<int> buckets = DecodeBuckets(20);
  EXPECT_EQ(DecodeBucketFor(1, buckets), 1);
  EXPECT_EQ(DecodeBucketFor(3, buckets), 4);
  EXPECT_EQ(DecodeBucketFor(9, buckets), 16);
  EXPECT_EQ(DecodeBucketFor(17, buckets), 24);
  EXPECT_EQ(DecodeBucketFor(25, buckets), -1);
}

}  // namespace
}  // namespace glm4v::worker
