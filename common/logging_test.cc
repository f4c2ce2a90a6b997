#include "common/logging.h"

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogComponent("");
    SetLogSink([this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogComponent("");
    SetLogLevel(LogLevel::kInfo);
    absl::SetFlag(&FLAGS_log_level, "");
    ::unsetenv("GLM4V_LOG_LEVEL");
  }
  std::vector<std::string> Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, FormatsOneLogfmtLine) {
  SetLogComponent("gateway");
  LOG_INFO("request admitted").With("request_id", "abc").With("tokens", 42).With("ok", true);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z "
                                     "level=info msg=\"request admitted\" request_id=abc "
                                     "tokens=42 ok=true component=gateway "
                                     "caller=logging_test\\.cc:[0-9]+"));
}

TEST_F(LoggingTest, QuotesAndEscapesValues) {
  LOG_WARN("a \"quoted\"\nmsg")
      .With("path", "/a b")
      .With("empty", "")
      .With("eq", "x=y")
      .With("bs", "c:\\d")
      .With("ratio", 0.25)
      .With("n", uint64_t{18446744073709551615u})
      .With("neg", -3)
      .With("status", absl::NotFoundError("no such"));
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  EXPECT_EQ(l.find('\n'), std::string::npos);
  EXPECT_THAT(l, HasSubstr("level=warn msg=\"a \\\"quoted\\\"\\nmsg\""));
  EXPECT_THAT(l, HasSubstr(" path=\"/a b\""));
  EXPECT_THAT(l, HasSubstr(" empty=\"\""));
  EXPECT_THAT(l, HasSubstr(" eq=\"x=y\""));
  EXPECT_THAT(l, HasSubstr(" bs=\"c:\\\\d\""));
  EXPECT_THAT(l, HasSubstr(" ratio=0.25"));
  EXPECT_THAT(l, HasSubstr(" n=18446744073709551615"));
  EXPECT_THAT(l, HasSubstr(" neg=-3"));
  EXPECT_THAT(l, HasSubstr(" status=\"NOT_FOUND: no such\""));
}

TEST_F(LoggingTest, LevelFiltersAndSkipsEvaluation) {
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  LOG_DEBUG("hidden").With("n", count());
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(Lines().empty());
  SetLogLevel(LogLevel::kDebug);
  LOG_DEBUG("shown").With("n", count());
  EXPECT_EQ(evaluated, 1);
  SetLogLevel(LogLevel::kError);
  LOG_WARN("hidden");
  LOG_ERROR("shown");
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("level=debug msg=\"shown\" n=1"));
  EXPECT_THAT(lines[1], HasSubstr("level=error"));
}

TEST_F(LoggingTest, MacroIsSafeInIfElse) {
  bool flag = false;
  if (flag)
    LOG_INFO("then");
  else
    LOG_INFO("else");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0], HasSubstr("msg=\"else\""));
}

TEST_F(LoggingTest, ParseAndInitFromFlagAndEnv) {
  EXPECT_EQ(*ParseLogLevel("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("loud").ok());

  ::setenv("GLM4V_LOG_LEVEL", "error", 1);
  ASSERT_TRUE(InitLogging().ok());
  EXPECT_EQ(GetLogLevel(), LogLevel::kError);
  absl::SetFlag(&FLAGS_log_level, "debug");  // the flag wins over the environment
  ASSERT_TRUE(InitLogging().ok());
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);
  absl::SetFlag(&FLAGS_log_level, "bogus");
  absl::Status s = InitLogging();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("--log_level"));
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);
  absl::SetFlag(&FLAGS_log_level, "");
  ::unsetenv("GLM4V_LOG_LEVEL");
  ASSERT_TRUE(InitLogging().ok());
  EXPECT_EQ(GetLogLevel(), LogLevel::kInfo);
}

TEST_F(LoggingTest, ConcurrentEventsStayWhole) {
  constexpr int kThreads = 8, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kPerThread; ++i) {
        LOG_INFO("tick").With("thread", t).With("i", i).With("pad", std::string(100, 'x'));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const std::string& l : lines) {
    ASSERT_THAT(l, StartsWith("ts="));
    ASSERT_THAT(l, MatchesRegex(".* msg=\"tick\" thread=[0-9] i=[0-9]+ pad=x{100} caller=.*"));
    // Per-thread order is preserved.
    std::vector<std::string> parts = absl::StrSplit(l, ' ');
    int t = std::stoi(parts[3].substr(7));
    int i = std::stoi(parts[4].substr(2));
    ASSERT_EQ(i, next[t]++);
  }
}

TEST(LogfmtValueTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(LogfmtValue("abc-1.2_x/y"), "abc-1.2_x/y");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a\tb"), "\"a\\tb\"");
  EXPECT_EQ(LogfmtValue(std::string("a\x01", 2)), "\"a\\x01\"");
}

}  // namespace
}  // namespace glm4v
