#include "services/gateway/tokenizer/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace glm4v::tokenizer {
namespace {

StopMatcher Make(std::vector<std::string> stops) {
  auto m = StopMatcher::Create(std::move(stops));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

// Feeds chunks; returns the emitted text (with Flush if no match) and the matched index.
std::pair<std::string, int> Feed(StopMatcher m, const std::vector<std::string>& chunks) {
  std::string out;
  for (const std::string& c : chunks) {
    StopMatcher::Result r = m.Push(c);
    out += r.text;
    if (r.matched >= 0) return {out, r.matched};
  }
  out += m.Flush();
  return {out, -1};
}

TEST(StopMatcherTest, MatchSpanningChunks) {
  StopMatcher m = Make({"</answer>"});
  StopMatcher::Result r = m.Push("The answer is 42.</ans");
  EXPECT_EQ(r.text, "The answer is 42.");  // "</ans" is held back.
  EXPECT_EQ(r.matched, -1);
  r = m.Push("wer> trailing");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.matched, 0);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.Push("more").text, "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m = Make({"STOP"});
  EXPECT_EQ(m.Push("ST").text, "");
  EXPECT_EQ(m.Push("ART ").text, "START ");
  EXPECT_EQ(m.Push("S").text, "");
  EXPECT_EQ(m.Flush(), "S");
}

TEST(StopMatcherTest, HoldsLongestPossiblePrefix) {
  StopMatcher m = Make({"abab"});
  EXPECT_EQ(m.Push("xaba").text, "x");  // "aba" could still become "abab".
  StopMatcher::Result r = m.Push("b");
  EXPECT_EQ(r.matched, 0);
  EXPECT_EQ(r.text, "");  // "x" went out with the first chunk.
}

TEST(StopMatcherTest, ReportsWhichStopMatched) {
  EXPECT_EQ(Feed(Make({"foo", "bar"}), {"xx b", "ar foo"}), std::make_pair(std::string("xx "), 1));
  // The stop that completes first wins, even if another started earlier.
  EXPECT_EQ(Feed(Make({"abcd", "bc"}), {"abcd"}), std::make_pair(std::string("a"), 1));
  // Same end: the longer (earlier-starting) one.
  EXPECT_EQ(Feed(Make({"c", "abc"}), {"xabc"}), std::make_pair(std::string("x"), 1));
}

TEST(StopMatcherTest, NoStopsPassesThrough) {
  EXPECT_EQ(Feed(Make({}), {"a", "b"}), std::make_pair(std::string("ab"), -1));
}

TEST(StopMatcherTest, MultibyteStops) {
  EXPECT_EQ(Feed(Make({"。\n"}), {"你好。", "\n再见"}), std::make_pair(std::string("你好"), 0));
}

TEST(StopMatcherTest, ResultIndependentOfChunking) {
  const std::vector<std::string> stops = {"<|user|>", "\n\nQ:", "user", "aaab"};
  const std::vector<std::string> texts = {
      "hello <|us", "text with\n\nQ: next", "no stop here at all", "a<|use<|user|>x",
      "aaaaab", "\n\n\nQ", "the user said <|user|>", "",
  };
  uint64_t state = 1;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (const std::string& text : texts) {
    const auto whole = Feed(Make(stops), {text});
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<std::string> chunks;
      for (size_t i = 0; i < text.size();) {
        const size_t take = 1 + next() % 5;
        chunks.push_back(text.substr(i, take));
        i += take;
      }
      ASSERT_EQ(Feed(Make(stops), chunks), whole) << text;
    }
  }
  EXPECT_EQ(Feed(Make(stops), {"the user said <|user|>"}),
            std::make_pair(std::string("the "), 2));
}

TEST(StopMatcherTest, RejectsBadStops) {
  EXPECT_FALSE(StopMatcher::Create({"ok", ""}).ok());
  EXPECT_FALSE(StopMatcher::Create({"\xFF"}).ok());
}

}  // namespace
}  // namespace glm4v::tokenizer
