#include "services/gateway/tokenizer/bpe_ranks.h"

#include <string>

#include "gtest/gtest.h"

namespace glm4v::tokenizer {
namespace {

TEST(Base64Test, DecodesStrictly) {
  std::string out;
  EXPECT_TRUE(DecodeBase64Strict("SGVsbG8=", &out));
  EXPECT_EQ(out, "Hello");
  out.clear();
  EXPECT_TRUE(DecodeBase64Strict("IENvbnZleW9y", &out));
  EXPECT_EQ(out, " Conveyor");
  out.clear();
  EXPECT_TRUE(DecodeBase64Strict("/w==", &out));
  EXPECT_EQ(out, "\xFF");
  for (const char* bad : {"SGVsbG8", "SGVsbG8*", "SG=sbG8=", "=GVsbG8=", "SGVsbG9=", "/x==",
                          "SGVsbG8==", "S===", "SGVs\nbG8="}) {
    std::string o;
    EXPECT_FALSE(DecodeBase64Strict(bad, &o)) << bad;
  }
}

TEST(BpeRanksTest, ParsesAndLooksUp) {
  // "a"=0, "b"=1, "ab"=2, in shuffled order and with CRLF and a trailing blank line.
  auto ranks = BpeRanks::Parse("YWI= 2\r\nYQ== 0\nYg== 1\n\n");
  ASSERT_TRUE(ranks.ok()) << ranks.status();
  EXPECT_EQ(ranks->size(), 3u);
  EXPECT_EQ(ranks->Find("ab"), 2);
  EXPECT_EQ(ranks->Find("a"), 0);
  EXPECT_EQ(ranks->Find("ba"), -1);
  EXPECT_EQ(ranks->Bytes(2), "ab");
  // Views must survive a move.
  BpeRanks moved = std::move(*ranks);
  EXPECT_EQ(moved.Find("b"), 1);
  EXPECT_EQ(moved.Bytes(0), "a");
}

void ExpectError(absl::string_view contents, absl::string_view needle) {
  auto ranks = BpeRanks::Parse(contents, "t.model");
  ASSERT_FALSE(ranks.ok()) << "accepted: " << contents;
  EXPECT_EQ(ranks.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ranks.status().message().find(needle), absl::string_view::npos)
      << ranks.status() << " lacks " << needle;
}

TEST(BpeRanksTest, RejectsBadFiles) {
  ExpectError("", "no tokens");
  ExpectError("\n\n", "no tokens");
  ExpectError("YQ== 0\nY*== 1\n", "t.model:2: bad base64");
  ExpectError("YQ== 0\nYg== 0\n", "duplicate rank 0");
  ExpectError("YQ== 0\nYg== 2\n", "rank 1 is missing");
  ExpectError("YQ== 1\n", "rank 0 is missing");
  ExpectError("YQ== 0\nYQ== 1\n", "same token bytes");
  ExpectError("YQ==0\n", "expected");
  ExpectError("YQ== 0 extra\n", "expected");
  ExpectError("YQ== -1\n", "bad rank");
  ExpectError("YQ== x\n", "bad rank");
  ExpectError("YQ== \n", "bad rank");
  ExpectError("YQ== 99999999999999999999\n", "bad rank");
  ExpectError("YQ== 1000000\n", "larger than the file");
  ExpectError(" 0\n", "empty token");
}

TEST(BpeRanksTest, MissingFileIsNotFound) {
  auto ranks = BpeRanks::LoadFile("/nonexistent/tokenizer.model");
  ASSERT_FALSE(ranks.ok());
  EXPECT_EQ(ranks.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace glm4v::tokenizer
