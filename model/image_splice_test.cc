#include "model/image_splice.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

using ::testing::ElementsAre;

ModelConfig TinyConfig() {
  ModelConfig c;
  c.padded_vocab_size = 1024;
  c.pad_token_id = 1000;  // <|endoftext|>, the image placeholder
  c.boi_token_id = 1001;
  c.eoi_token_id = 1002;
  return c;
}
constexpr int32_t kEot = 1000, kBoi = 1001, kEoi = 1002;

TEST(SpliceImagesTest, OneImageGetsSharedPatchPosition) {
  const std::vector<int32_t> ids = {1004, 1005, kBoi, kEot, kEoi, 7, 8};
  auto s = SpliceImages(ids, {6}, TinyConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->token_ids, ElementsAre(1004, 1005, kBoi, kEot, kEot, kEot, kEot, kEoi, 7, 8));
  EXPECT_THAT(s->positions, ElementsAre(0, 1, 2, 3, 3, 3, 3, 4, 5, 6));
  EXPECT_THAT(s->embedding_rows, ElementsAre(-1, -1, 0, 1, 2, 3, 4, 5, -1, -1));
  EXPECT_THAT(s->image_starts, ElementsAre(2));
  EXPECT_EQ(s->next_position, 7);
}

TEST(SpliceImagesTest, TextOnlyAndImageAtTheEnd) {
  auto text = SpliceImages(std::vector<int32_t>{5, 6, kEot}, {}, TinyConfig());
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(text->positions, ElementsAre(0, 1, 2));
  EXPECT_THAT(text->embedding_rows, ElementsAre(-1, -1, -1));
  EXPECT_EQ(text->next_position, 3);

  auto tail = SpliceImages(std::vector<int32_t>{5, kBoi, kEot, kEoi}, {3}, TinyConfig());
  ASSERT_TRUE(tail.ok());
  EXPECT_THAT(tail->positions, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(tail->next_position, 4);
}

TEST(SpliceImagesTest, TwoImagesWhenAllowed) {
  const std::vector<int32_t> ids = {kBoi, kEot, kEoi, 9, kBoi, kEot, kEoi};
  auto s = SpliceImages(ids, {3, 4}, TinyConfig(), /*max_images=*/2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->positions, ElementsAre(0, 1, 2, 3, 4, 5, 5, 6));
  EXPECT_THAT(s->embedding_rows, ElementsAre(0, 1, 2, -1, 3, 4, 5, 6));
  EXPECT_THAT(s->image_starts, ElementsAre(0, 4));
  EXPECT_EQ(s->next_position, 7);
}

void ExpectInvalid(const std::vector<int32_t>& ids, const std::vector<int32_t>& rows,
                   int max_images = 1) {
  auto s = SpliceImages(ids, rows, TinyConfig(), max_images);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
}

TEST(SpliceImagesTest, RejectsIdsOutsideVocabulary) {
  ExpectInvalid({1, -1, 2}, {});
  ExpectInvalid({1, 1024}, {});
}

TEST(SpliceImagesTest, RejectsBoiWithoutPlaceholderAndEoi) {
  ExpectInvalid({1, kBoi}, {6});                 // boi at the end
  ExpectInvalid({1, kBoi, kEot}, {6});           // no eoi
  ExpectInvalid({1, kBoi, kEot, 5, kEoi}, {6});  // extra token inside
  ExpectInvalid({1, kBoi, 5, kEoi}, {6});        // wrong placeholder
  ExpectInvalid({1, kBoi, kEoi}, {6});           // no placeholder
}

TEST(SpliceImagesTest, RejectsEoiWithoutBoi) { ExpectInvalid({1, kEot, kEoi, 2}, {}); }

TEST(SpliceImagesTest, RejectsSecondImageWhenOneIsSupported) {
  ExpectInvalid({kBoi, kEot, kEoi, 5, kBoi, kEot, kEoi}, {6});
  ExpectInvalid({kBoi, kEot, kEoi, 5, kBoi, kEot, kEoi}, {6, 6});
}

TEST(SpliceImagesTest, RejectsImageCountMismatch) {
  ExpectInvalid({1, kBoi, kEot, kEoi}, {});      // placeholder, no image
  ExpectInvalid({1, 2, 3}, {6});                 // image, no placeholder
  ExpectInvalid({kBoi, kEot, kEoi}, {6, 6}, 2);  // two images, one placeholder
}

TEST(SpliceImagesTest, RejectsDegenerateImageRows) {
  ExpectInvalid({kBoi, kEot, kEoi}, {1});
  ExpectInvalid({kBoi, kEot, kEoi}, {0});
}

}  // namespace
}  // namespace glm4v
