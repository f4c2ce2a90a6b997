#include "common/flags_util.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "common/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, flags_util_test_port, 7, "a binary-local flag");

namespace glm4v {
namespace {

using ::testing::HasSubstr;

TEST(InitBinaryTest, ParsesFlagsLevelAndComponent) {
  std::vector<std::string> storage = {"prog", "--flags_util_test_port=9", "--log_level=warn",
                                      "pos"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  std::vector<char*> args = InitBinary(static_cast<int>(argv.size()), argv.data(), "unit", "usage");
  ASSERT_EQ(args.size(), 2u);
  EXPECT_STREQ(args[1], "pos");
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_util_test_port), 9);
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarn);

  std::string line;
  SetLogSink([&](absl::string_view l) { line = std::string(l); });
  LOG_ERROR("boom");
  SetLogSink(nullptr);
  EXPECT_THAT(line, HasSubstr(" component=unit "));
}

TEST(InitBinaryDeathTest, BadLogLevelExits) {
  std::vector<std::string> storage = {"prog", "--log_level=chatty"};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  EXPECT_EXIT(InitBinary(2, argv.data(), "unit", "usage"), ::testing::ExitedWithCode(2),
              "unknown log level");
}

}  // namespace
}  // namespace glm4v
