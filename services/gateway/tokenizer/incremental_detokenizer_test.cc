#include "services/gateway/tokenizer/incremental_detokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/gateway/tokenizer/test_text.h"
#include "services/gateway/tokenizer/utf8.h"

namespace glm4v::tokenizer {
namespace {

using Ids = std::vector<TokenId>;

const Tokenizer& Cl100k() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::LoadFromFiles("tests/data/tokenizer/cl100k_base.tiktoken");
    if (!t.ok()) std::abort();
    return t->release();
  }();
  return *tok;
}

// Streams ids one at a time; checks every piece is valid UTF-8; returns all pieces + flush.
std::vector<std::string> Stream(const Ids& ids) {
  IncrementalDetokenizer d(&Cl100k());
  std::vector<std::string> pieces;
  for (TokenId id : ids) {
    auto piece = d.Push(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    EXPECT_TRUE(IsValidUtf8(*piece));
    pieces.push_back(*piece);
  }
  pieces.push_back(d.Flush());
  return pieces;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s;
  return out;
}

TEST(IncrementalDetokenizerTest, HoldsSplitCharacters) {
  // Golden CJK ids: "你好，世界！..." where "世" spans 3574 + 244.
  const Ids ids = {57668, 53901, 3922, 3574, 244, 98220};
  const std::vector<std::string> pieces = Stream(ids);
  EXPECT_EQ(pieces[2], "，");
  EXPECT_EQ(pieces[3], "");  // Half of "世" is held back...
  EXPECT_EQ(pieces[4], "世");  // ...and released with its last byte.
  EXPECT_EQ(Join(pieces), *Cl100k().Decode(ids));
  EXPECT_EQ(Join(pieces), "你好，世界");
}

TEST(IncrementalDetokenizerTest, EmojiBytesTokens) {
  // " 😀👍🏽" = 91416, 9468, 239, 235, 9468, 237, 121 (golden).
  const Ids ids = {91416, 9468, 239, 235, 9468, 237, 121};
  const std::vector<std::string> pieces = Stream(ids);
  EXPECT_EQ(Join(pieces), " 😀👍🏽");
  EXPECT_EQ(pieces[1], "");
  EXPECT_EQ(pieces[2], "");
}

TEST(IncrementalDetokenizerTest, UnfinishedCharacterAtEndFlushesAsReplacement) {
  IncrementalDetokenizer d(&Cl100k());
  EXPECT_EQ(*d.Push(9906), "Hello");
  EXPECT_EQ(*d.Push(3574), "");  // 0xE4 0xB8
  EXPECT_EQ(d.pending_bytes(), 2u);
  EXPECT_EQ(d.Flush(), std::string(kReplacementChar));
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.Flush(), "");
}

TEST(IncrementalDetokenizerTest, UnknownIdLeavesStateUntouched) {
  IncrementalDetokenizer d(&Cl100k());
  EXPECT_EQ(*d.Push(3574), "");
  auto bad = d.Push(Ids{244, 999999});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*d.Push(244), "世");
}

TEST(IncrementalDetokenizerTest, StreamingEqualsBatchOnEncodedText) {
  const std::string text = testing::MixedText(50000, 17);
  const Ids ids = *Cl100k().EncodeOrdinary(text);
  EXPECT_EQ(Join(Stream(ids)), text);
}

// Random id sequences (often invalid UTF-8 mid-stream): pieces are valid UTF-8 and their
// concatenation equals Decode() of the whole sequence, also when pushed in batches.
TEST(IncrementalDetokenizerTest, FuzzRandomIds) {
  testing::Rng rng(99);
  // Byte-ish tokens (< 256) are where split characters come from; mix with regular ones.
  for (int round = 0; round < 2000; ++round) {
    Ids ids;
    const int n = static_cast<int>(rng.Below(20));
    for (int i = 0; i < n; ++i) {
      ids.push_back(rng.Below(3) == 0 ? static_cast<TokenId>(rng.Below(100270))
                                      : static_cast<TokenId>(rng.Below(256)));
    }
    const std::string want = *Cl100k().Decode(ids);
    ASSERT_EQ(Join(Stream(ids)), want);
    IncrementalDetokenizer d(&Cl100k());
    std::string batched;
    for (size_t i = 0; i < ids.size();) {
      const size_t take = std::min<size_t>(1 + rng.Below(4), ids.size() - i);
      batched += *d.Push(absl::MakeConstSpan(ids.data() + i, take));
      i += take;
    }
    batched += d.Flush();
    ASSERT_EQ(batched, want);
  }
}

}  // namespace
}  // namespace glm4v::tokenizer
