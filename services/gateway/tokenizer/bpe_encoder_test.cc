#include "services/gateway/tokenizer/bpe_encoder.h"

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/gateway/tokenizer/test_text.h"

namespace glm4v::tokenizer {
namespace {

const BpeRanks& Cl100k() {
  static const BpeRanks* ranks = [] {
    auto r = BpeRanks::LoadFile("tests/data/tokenizer/cl100k_base.tiktoken");
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      std::abort();
    }
    return new BpeRanks(std::move(*r));
  }();
  return *ranks;
}

std::vector<TokenId> Scan(absl::string_view piece) {
  std::vector<TokenId> out;
  BytePairEncodeScan(piece, Cl100k(), &out);
  return out;
}
std::vector<TokenId> Heap(absl::string_view piece) {
  std::vector<TokenId> out;
  BytePairEncodeHeap(piece, Cl100k(), &out);
  return out;
}

TEST(BpeEncoderTest, KnownPieces) {
  std::vector<TokenId> out;
  BytePairEncode("Hello", Cl100k(), &out);  // Whole-piece hit.
  EXPECT_EQ(out, std::vector<TokenId>{9906});
  // From the tiktoken goldens: " 😀👍🏽" and " naïve" are merged from bytes.
  EXPECT_EQ(Scan(" 😀👍🏽"), (std::vector<TokenId>{91416, 9468, 239, 235, 9468, 237, 121}));
  EXPECT_EQ(Scan(" naïve"), (std::vector<TokenId>{95980, 588}));
  EXPECT_EQ(Heap(" naïve"), (std::vector<TokenId>{95980, 588}));
}

TEST(BpeEncoderTest, ScanAndHeapAgree) {
  testing::Rng rng(7);
  std::vector<std::string> pieces = {std::string(300, 'a'), std::string(37, 'z') + "q",
                                     "ababababababababab", "\xF0\x9F\x98\x80\xF0\x9F\x98\x80"};
  for (int i = 0; i < 3000; ++i) {
    pieces.push_back(testing::RandomUnicode(rng, 1 + rng.Below(12)));
    pieces.push_back(testing::RandomBytes(rng, 1 + rng.Below(12)));
  }
  const std::string mixed = testing::MixedText(20000, 3);
  for (size_t i = 0; i + 16 < mixed.size(); i += 16) pieces.push_back(mixed.substr(i, 1 + i % 29));
  for (const std::string& p : pieces) {
    const std::vector<TokenId> scan = Scan(p);
    ASSERT_EQ(scan, Heap(p)) << p;
    // And the ids spell the piece.
    std::string back;
    for (TokenId id : scan) { const absl::string_view b = Cl100k().Bytes(id); back.append(b.data(), b.size()); }
    ASSERT_EQ(back, p);
  }
}

TEST(BpeEncoderTest, GoldenLongRunOfOneLetter) {
  // 300 'a's: tiktoken gives 37 x "aaaaaaaa" (70540) + "aaaa" (29558). Both strategies must agree
  // with it; BytePairEncode picks the heap above kHeapThreshold.
  std::vector<TokenId> want(37, 70540);
  want.push_back(29558);
  const std::string piece(300, 'a');
  EXPECT_EQ(Scan(piece), want);
  EXPECT_EQ(Heap(piece), want);
  std::vector<TokenId> out;
  BytePairEncode(piece, Cl100k(), &out);
  EXPECT_EQ(out, want);
}

TEST(BpeEncoderTest, HugePieceIsNotQuadratic) {
  testing::Rng rng(11);
  std::string piece;
  while (piece.size() < 2000000) piece += "qzx"[rng.Below(3)];
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<TokenId> out;
  BytePairEncode(piece, Cl100k(), &out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string back;
  for (TokenId id : out) { const absl::string_view b = Cl100k().Bytes(id); back.append(b.data(), b.size()); }
  EXPECT_EQ(back, piece);
  EXPECT_LT(s, 10.0);  // The scan would take hours on 2 MB.
}

}  // namespace
}  // namespace glm4v::tokenizer
