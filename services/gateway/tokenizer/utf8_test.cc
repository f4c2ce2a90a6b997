#include "services/gateway/tokenizer/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace glm4v::tokenizer {
namespace {

const std::string kFffd(kReplacementChar);

std::string Repair(absl::string_view s) {
  std::string out;
  AppendRepairedUtf8(s, &out);
  return out;
}

TEST(Utf8Test, ValidText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80"));
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
}

TEST(Utf8Test, InvalidText) {
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // Overlong NUL.
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // Overlong '/'.
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // Surrogate U+D800.
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000.
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("abcdefgh\xE4\xBD"));  // Truncated after the ASCII fast path.
}

// The example from the Unicode Standard, §3.9 "U+FFFD Substitution of Maximal Subparts".
TEST(Utf8Test, RepairUsesMaximalSubparts) {
  EXPECT_EQ(Repair("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(Repair("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(Repair("\xC0\x80"), kFffd + kFffd);
  EXPECT_EQ(Repair("ok\xE4\xBD"), "ok" + kFffd);
  EXPECT_EQ(Repair("\xE4\xBD\xA0"), "\xE4\xBD\xA0");
}

TEST(Utf8Test, CompletePrefixHoldsOnlyAnUnfinishedCharacter) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xE4"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xE4\xBD"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xE4\xBD\xA0"), 5u);
  EXPECT_EQ(CompleteUtf8Prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\x80"), 3u);      // Stray continuation: can never complete.
  EXPECT_EQ(CompleteUtf8Prefix("ab\xED\xA0"), 4u);  // Surrogate prefix: already invalid.
  EXPECT_EQ(CompleteUtf8Prefix("\xE4\xE4\xBD"), 1u);
}

// Repairing a byte stream chunk by chunk (holding unfinished characters) equals repairing it all.
TEST(Utf8Test, ChunkedRepairEqualsWholeRepair) {
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  static constexpr unsigned char kAlphabet[] = {'a', 0x80, 0xBF, 0xC2, 0xC3, 0xE0, 0xE4, 0xED,
                                                0xA0, 0x9F, 0xF0, 0xF4, 0x90, 0x8F, 0xF5, 0xC0};
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    const int n = next() % 24;
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(kAlphabet[next() % 16]));
    std::string pending, streamed;
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t take = 1 + next() % 4;
      pending += bytes.substr(pos, take);
      pos += take;
      const size_t done = CompleteUtf8Prefix(pending);
      AppendRepairedUtf8(absl::string_view(pending).substr(0, done), &streamed);
      pending.erase(0, done);
      ASSERT_LE(pending.size(), 3u);
    }
    AppendRepairedUtf8(pending, &streamed);
    ASSERT_EQ(streamed, Repair(bytes)) << "round " << round;
    ASSERT_TRUE(IsValidUtf8(streamed));
  }
}

}  // namespace
}  // namespace glm4v::tokenizer
