#include "services/gateway/auth/internal_caller.h"

#include "gtest/gtest.h"

namespace glm4v::auth {
namespace {

TEST(InternalCallerTest, TokensAreLongAndFresh) {
  const std::string a = NewInternalToken(), b = NewInternalToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(InternalCallerTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace glm4v::auth
