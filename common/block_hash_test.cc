#include "common/block_hash.h"

#include <vector>

#include "gtest/gtest.h"

namespace glm4v {
namespace {

std::vector<RowIdentity> TextRows(const std::vector<int32_t>& ids, int first_index) {
  std::vector<RowIdentity> rows;
  for (size_t i = 0; i < ids.size(); ++i) {
    RowIdentity row;
    row.token_id = ids[i];
    row.position = first_index + static_cast<int>(i);
    row.cache_index = first_index + static_cast<int>(i);
    rows.push_back(row);
  }
  return rows;
}

TEST(BlockHashTest, EqualContentGivesEqualHash) {
  BlockHash a = HashBlock({}, TextRows({1, 2, 3, 4}, 0));
  BlockHash b = HashBlock({}, TextRows({1, 2, 3, 4}, 0));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, HashBlock({}, TextRows({1, 2, 3, 5}, 0)));
  EXPECT_NE(a, HashBlock({}, TextRows({2, 1, 3, 4}, 0)));
}

TEST(BlockHashTest, ChainsTheParent) {
  BlockHash first = HashBlock({}, TextRows({1, 2, 3, 4}, 0));
  BlockHash other_first = HashBlock({}, TextRows({9, 2, 3, 4}, 0));
  EXPECT_NE(HashBlock(first, TextRows({5, 6, 7, 8}, 4)),
            HashBlock(other_first, TextRows({5, 6, 7, 8}, 4)));
}

TEST(BlockHashTest, ImageRowsAreKeyedByImageContentAndRow) {
  BlockHash cat = HashImageContent("cat.png sha256");
  BlockHash dog = HashImageContent("dog.png sha256");
  EXPECT_NE(cat, dog);
  auto image_rows = [](const BlockHash* image, int first_row) {
    std::vector<RowIdentity> rows(4);
    for (int i = 0; i < 4; ++i) {
      rows[i].token_id = 1000;  // placeholder id, same for every image
      rows[i].image_hash = image;
      rows[i].image_row = first_row + i;
      rows[i].position = 5;
      rows[i].cache_index = 5 + i;
    }
    return rows;
  };
  EXPECT_EQ(HashBlock({}, image_rows(&cat, 0)), HashBlock({}, image_rows(&cat, 0)));
  EXPECT_NE(HashBlock({}, image_rows(&cat, 0)), HashBlock({}, image_rows(&dog, 0)));
  EXPECT_NE(HashBlock({}, image_rows(&cat, 0)), HashBlock({}, image_rows(&cat, 4)));
  // An image row is not the same as a text row holding its placeholder id.
  std::vector<RowIdentity> text = image_rows(nullptr, 0);
  EXPECT_NE(HashBlock({}, image_rows(&cat, 0)), HashBlock({}, text));
}

TEST(BlockHashTest, PositionsThatDifferFromTheCacheIndexCount) {
  std::vector<RowIdentity> rows = TextRows({1, 2, 3, 4}, 8);
  BlockHash default_positions = HashBlock({}, rows);
  rows[2].position -= 3;  // e.g. text after an image: position lags the cache index
  EXPECT_NE(default_positions, HashBlock({}, rows));
}

TEST(BlockHashTest, ContentHashBytesAreHashedWhole) {
  EXPECT_NE(HashImageContent("abcdefgh1"), HashImageContent("abcdefgh2"));
  EXPECT_NE(HashImageContent(std::string("a\0", 2)), HashImageContent("a"));
}

}  // namespace
}  // namespace glm4v
