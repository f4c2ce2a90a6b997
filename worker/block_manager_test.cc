#include "worker/block_manager.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v::worker {
namespace {

BlockHash H(uint64_t v) { return BlockHash{v, ~v}; }

TEST(KvBlockManagerTest, AllocatesEveryBlockOnceThenRunsOut) {
  KvBlockManager manager(6, 16, true);
  std::set<int> blocks;
  for (int i = 0; i < 6; ++i) {
    std::optional<int> block = manager.Allocate();
    ASSERT_TRUE(block.has_value());
    EXPECT_TRUE(blocks.insert(*block).second);
    EXPECT_EQ(manager.ref_count(*block), 1);
  }
  EXPECT_EQ(manager.num_free_blocks(), 0);
  EXPECT_FALSE(manager.Allocate().has_value());
  for (int block : blocks) manager.Release(block);
  EXPECT_EQ(manager.num_free_blocks(), 6);
  for (int block = 0; block < 6; ++block) EXPECT_EQ(manager.ref_count(block), 0);
}

TEST(KvBlockManagerTest, RegisteredBlocksStayCachedAfterRelease) {
  KvBlockManager manager(4, 16, true);
  int block = *manager.Allocate();
  manager.RegisterFull(block, H(7));
  manager.Release(block);
  EXPECT_EQ(manager.num_free_blocks(), 4);
  EXPECT_EQ(manager.num_cached_idle_blocks(), 1);
  ASSERT_EQ(manager.FindCached(H(7)), block);

  // Two users share it; it is not allocatable while in use.
  EXPECT_EQ(manager.AcquireCached(H(7)), block);
  EXPECT_EQ(manager.AcquireCached(H(7)), block);
  EXPECT_EQ(manager.ref_count(block), 2);
  EXPECT_EQ(manager.num_free_blocks(), 3);
  EXPECT_EQ(manager.num_cached_idle_blocks(), 0);
  manager.Release(block);
  manager.Release(block);
  EXPECT_EQ(manager.ref_count(block), 0);
  EXPECT_EQ(manager.num_free_blocks(), 4);
  EXPECT_EQ(manager.stats().prefix_hits, 2);
}

TEST(KvBlockManagerTest, FreeBlocksGoFirstThenLeastRecentlyReleasedCachedBlocks) {
  KvBlockManager manager(3, 16, true);
  int a = *manager.Allocate();
  int b = *manager.Allocate();
  manager.RegisterFull(a, H(1));
  manager.RegisterFull(b, H(2));
  manager.Release(a);  // released first: evicted first
  manager.Release(b);

  int c = *manager.Allocate();  // the never-used block, no eviction
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_EQ(manager.stats().evictions, 0);
  EXPECT_TRUE(manager.FindCached(H(1)).has_value());

  EXPECT_EQ(manager.Allocate(), a);
  EXPECT_EQ(manager.stats().evictions, 1);
  EXPECT_FALSE(manager.FindCached(H(1)).has_value());
  EXPECT_EQ(manager.FindCached(H(2)), b);
}

TEST(KvBlockManagerTest, ReacquiringRefreshesNothingButRemovesFromIdleList) {
  KvBlockManager manager(2, 16, true);
  int a = *manager.Allocate();
  int b = *manager.Allocate();
  manager.RegisterFull(a, H(1));
  manager.RegisterFull(b, H(2));
  manager.Release(a);
  manager.Release(b);
  // Reuse a, release it again: now b is the least recently released.
  ASSERT_EQ(manager.AcquireCached(H(1)), a);
  manager.Release(a);
  EXPECT_EQ(manager.Allocate(), b);
  EXPECT_EQ(manager.FindCached(H(1)), a);
}

TEST(KvBlockManagerTest, DuplicateContentKeepsTheFirstBlock) {
  KvBlockManager manager(2, 16, true);
  int a = *manager.Allocate();
  int b = *manager.Allocate();
  manager.RegisterFull(a, H(5));
  manager.RegisterFull(b, H(5));
  manager.Release(b);
  EXPECT_EQ(manager.num_cached_idle_blocks(), 0);  // b had no content of its own
  manager.Release(a);
  EXPECT_EQ(manager.num_cached_idle_blocks(), 1);
  EXPECT_EQ(manager.FindCached(H(5)), a);
}

TEST(KvBlockManagerTest, DisabledPrefixCachingFindsNothing) {
  KvBlockManager manager(2, 16, false);
  int a = *manager.Allocate();
  manager.RegisterFull(a, H(5));
  manager.Release(a);
  EXPECT_FALSE(manager.FindCached(H(5)).has_value());
  EXPECT_EQ(manager.num_cached_idle_blocks(), 0);
  EXPECT_EQ(manager.num_free_blocks(), 2);
}

}  // namespace
}  // namespace glm4v::worker
