#include "services/gateway/tokenizer/pretokenizer.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v::tokenizer {
namespace {

std::vector<std::string> Pieces(const Pretokenizer& p, absl::string_view text) {
  std::vector<std::string> out;
  absl::Status s = p.Split(text, [&](absl::string_view piece) { out.emplace_back(piece); });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

using V = std::vector<std::string>;

class PretokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = Pretokenizer::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    pre_ = std::move(*p);
  }
  std::unique_ptr<Pretokenizer> pre_;
};

TEST_F(PretokenizerTest, Contractions) {
  EXPECT_EQ(Pieces(*pre_, "I'm sure they'll say DON'T"),
            (V{"I", "'m", " sure", " they", "'ll", " say", " DON", "'T"}));
  EXPECT_EQ(Pieces(*pre_, "it'S we'VE"), (V{"it", "'S", " we", "'VE"}));
}

TEST_F(PretokenizerTest, NumbersInGroupsOfThree) {
  EXPECT_EQ(Pieces(*pre_, "1234567 x3.14"), (V{"123", "456", "7", " x", "3", ".", "14"}));
}

TEST_F(PretokenizerTest, Whitespace) {
  // A run of spaces before a word leaves its last space to the word (\s+(?!\S)).
  EXPECT_EQ(Pieces(*pre_, "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(Pieces(*pre_, "  lead"), (V{" ", " lead"}));
  EXPECT_EQ(Pieces(*pre_, "end   "), (V{"end", "   "}));
  EXPECT_EQ(Pieces(*pre_, "x\n\n\n"), (V{"x", "\n\n\n"}));
  EXPECT_EQ(Pieces(*pre_, "tabs\tand\r\nwin"), (V{"tabs", "\tand", "\r\n", "win"}));
  EXPECT_EQ(Pieces(*pre_, "):\n    return"), (V{"):\n", "   ", " return"}));
}

TEST_F(PretokenizerTest, UnicodeClasses) {
  // \p{L} covers CJK; full-width punctuation joins the following word like a space does.
  EXPECT_EQ(Pieces(*pre_, "你好，世界"), (V{"你好", "，世界"}));
  // U+3000 (ideographic space) is \s under UCP.
  EXPECT_EQ(Pieces(*pre_, "a\u3000\u3000b"), (V{"a", "\u3000", "\u3000b"}));
  EXPECT_EQ(Pieces(*pre_, "emoji 😀👍"), (V{"emoji", " 😀👍"}));
  EXPECT_EQ(Pieces(*pre_, "café"), (V{"café"}));
}

// \s is Unicode White_Space as in tiktoken: U+0085 is a space, U+180E (PCRE2's extra) is not.
TEST_F(PretokenizerTest, WhitespaceIsUnicodeWhiteSpace) {
  EXPECT_EQ(Pieces(*pre_, "x\u0085\u0085y"), (V{"x", "\u0085", "\u0085y"}));
  EXPECT_EQ(Pieces(*pre_, "a\u180E!"), (V{"a", "\u180E!"}));
  EXPECT_EQ(Pieces(*pre_, "a\u2003\u2003b"), (V{"a", "\u2003", "\u2003b"}));
}

TEST(RewriteWhitespaceClassesTest, InsideAndOutsideClasses) {
  const std::string ws =
      R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  EXPECT_EQ(RewriteWhitespaceClasses(R"(\s+(?!\S))"), "[" + ws + "]+(?![^" + ws + "])");
  EXPECT_EQ(RewriteWhitespaceClasses(R"([^\s\p{L}]x\\s)"), "[^" + ws + R"(\p{L}]x\\s)");
  EXPECT_EQ(RewriteWhitespaceClasses(R"([]\s]\s)"), "[]" + ws + "][" + ws + "]");
}

TEST_F(PretokenizerTest, PiecesCoverLongInputs) {
  // Long runs stress the JIT stack; the pieces must still tile the input exactly.
  for (const std::string& text :
       {std::string(200000, ' '), std::string(200000, '\n'), std::string(100000, 'a'),
        std::string(50000, '!') + std::string(50000, ' ') + "x"}) {
    std::string joined;
    absl::Status s = pre_->Split(text, [&](absl::string_view p) { joined.append(p.data(), p.size()); });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(joined, text);
  }
}

TEST_F(PretokenizerTest, ConcurrentUse) {
  const std::string text = "Hello, world! 你好 123456 \n\n  x";
  const std::vector<std::string> want = Pieces(*pre_, text);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::vector<std::string> got;
        (void)pre_->Split(text, [&](absl::string_view p) { got.emplace_back(p); });
        if (got != want) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

TEST(PretokenizerCreateTest, BadPatternIsAnError) {
  auto p = Pretokenizer::Create("(unclosed");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PretokenizerCreateTest, GapsAreReported) {
  auto p = Pretokenizer::Create("a");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->Split("aaa", [](absl::string_view) {}).ok());
  EXPECT_FALSE((*p)->Split("aba", [](absl::string_view) {}).ok());
}

}  // namespace
}  // namespace glm4v::tokenizer
