#include "services/gateway/tokenizer/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
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
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

TEST(TokenizerTest, SpecialLayoutFollowsRanks) {
  const Tokenizer& t = Cl100k();
  EXPECT_EQ(t.num_ranks(), 100256u);
  EXPECT_EQ(t.vocab_size(), 100270u);
  EXPECT_EQ(*t.SpecialId("<|endoftext|>"), 100256);
  EXPECT_EQ(*t.SpecialId("[gMASK]"), 100258);
  EXPECT_EQ(*t.SpecialId("<|user|>"), 100263);
  EXPECT_EQ(*t.SpecialId("<|begin_of_image|>"), 100266);
  EXPECT_EQ(*t.SpecialId("<|end_of_video|>"), 100269);
  EXPECT_EQ(t.SpecialId("<|nope|>").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(t.IsSpecial(100263));
  EXPECT_FALSE(t.IsSpecial(198));
}

TEST(TokenizerTest, SpecialsOnlyInEncodeMode) {
  const Tokenizer& t = Cl100k();
  // Golden: tiktoken's encode(allowed_special="all") vs encode_ordinary.
  EXPECT_EQ(*t.Encode("<|user|>\nHello, world!<|assistant|>"),
            (Ids{100263, 198, 9906, 11, 1917, 0, 100264}));
  EXPECT_EQ(*t.EncodeOrdinary("<|user|>"), (Ids{27, 91, 882, 91, 29}));
  // Adjacent specials, a special at the very end, and a broken special stays text.
  EXPECT_EQ(*t.Encode("[gMASK]<sop>"), (Ids{100258, 100260}));
  EXPECT_EQ(*t.Encode("<|user|"), *t.EncodeOrdinary("<|user|"));
}

TEST(TokenizerTest, DecodeRejectsUnknownIds) {
  const Tokenizer& t = Cl100k();
  EXPECT_EQ(*t.Decode(Ids{9906, 11, 1917, 0}), "Hello, world!");
  EXPECT_EQ(*t.Decode(Ids{100263}), "<|user|>");
  for (TokenId bad : {-1, 100270, 1 << 30}) {
    auto d = t.Decode(Ids{9906, bad});
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// Policy: invalid UTF-8 in user text is replaced by U+FFFD (maximal subparts) before encoding.
TEST(TokenizerTest, InvalidUtf8IsReplaced) {
  const Tokenizer& t = Cl100k();
  const std::string bad = "ok\xFF\xC3 caf\xE9!";
  const std::string repaired = "ok\xEF\xBF\xBD\xEF\xBF\xBD caf\xEF\xBF\xBD!";
  auto ids = t.EncodeOrdinary(bad);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, *t.EncodeOrdinary(repaired));
  EXPECT_EQ(*t.Decode(*ids), repaired);
  EXPECT_EQ(*t.Encode(bad), *ids);
}

TEST(TokenizerTest, DecodeBytesKeepsSplitCharacters) {
  const Tokenizer& t = Cl100k();
  // "世" is split across tokens 3574 and 244 in the golden CJK case.
  EXPECT_EQ(*t.DecodeBytes(Ids{3574}), "\xE4\xB8");
  EXPECT_EQ(*t.Decode(Ids{3574}), "\xEF\xBF\xBD");
  EXPECT_EQ(*t.Decode(Ids{3574, 244}), "世");
}

// Bounded fuzz: random Unicode and random bytes round-trip through encode_ordinary/decode.
TEST(TokenizerTest, FuzzRoundTrip) {
  const Tokenizer& t = Cl100k();
  testing::Rng rng(2024);
  for (int i = 0; i < 4000; ++i) {
    const std::string text = testing::RandomUnicode(rng, rng.Below(40));
    auto ids = t.EncodeOrdinary(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_EQ(*t.Decode(*ids), text);
    for (TokenId id : *ids) ASSERT_LT(static_cast<size_t>(id), t.num_ranks());
  }
  for (int i = 0; i < 4000; ++i) {
    const std::string bytes = testing::RandomBytes(rng, rng.Below(24));
    auto ids = t.EncodeOrdinary(bytes);
    ASSERT_TRUE(ids.ok()) << ids.status();
    std::string want;
    AppendRepairedUtf8(bytes, &want);
    ASSERT_EQ(*t.Decode(*ids), want);
    if (IsValidUtf8(bytes)) ASSERT_EQ(want, bytes);
  }
  // Encode (specials on) round-trips too, with specials sprinkled into the text.
  const char* specials[] = {"<|user|>", "[gMASK]", "<|begin_of_image|>", "<sop>", "<|"};
  for (int i = 0; i < 1000; ++i) {
    std::string text = testing::RandomUnicode(rng, rng.Below(10));
    text += specials[rng.Below(5)];
    text += testing::RandomUnicode(rng, rng.Below(10));
    ASSERT_EQ(*t.Decode(*t.Encode(text)), text);
  }
}

TEST(TokenizerTest, LargeMixedTextRoundTrips) {
  const Tokenizer& t = Cl100k();
  const std::string text = testing::MixedText(300000, 5);
  auto ids = t.EncodeOrdinary(text);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*t.Decode(*ids), text);
  EXPECT_LT(ids->size(), text.size() / 2);  // BPE actually merges.
}

TEST(TokenizerTest, ThreadSafe) {
  const Tokenizer& t = Cl100k();
  const std::string text = testing::MixedText(20000, 9);
  const Ids want = *t.EncodeOrdinary(text);
  std::vector<int> bad(3, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 3; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 20; ++i) {
        if (*t.EncodeOrdinary(text) != want) ++bad[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(3, 0));
}

// A small byte-level vocabulary: 256 single bytes + a few merges, written as a ranks file.
std::string TinyRanksFile(const std::string& dir, const std::vector<std::string>& merges) {
  static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto b64 = [&](const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i += 3) {
      uint32_t w = static_cast<uint8_t>(s[i]) << 16;
      if (i + 1 < s.size()) w |= static_cast<uint8_t>(s[i + 1]) << 8;
      if (i + 2 < s.size()) w |= static_cast<uint8_t>(s[i + 2]);
      out += kB64[(w >> 18) & 63];
      out += kB64[(w >> 12) & 63];
      out += i + 1 < s.size() ? kB64[(w >> 6) & 63] : '=';
      out += i + 2 < s.size() ? kB64[w & 63] : '=';
    }
    return out;
  };
  const std::string path = dir + "/tokenizer.model";
  std::ofstream f(path, std::ios::binary);
  int rank = 0;
  for (int b = 0; b < 256; ++b) f << b64(std::string(1, static_cast<char>(b))) << " " << rank++ << "\n";
  for (const std::string& m : merges) f << b64(m) << " " << rank++ << "\n";
  return path;
}

std::string MakeDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::system(("mkdir -p '" + dir + "'").c_str());
  return dir;
}

TEST(TokenizerLoadTest, DirectoryWithoutConfigUsesDefaultLayout) {
  const std::string dir = MakeDir("tok_noconfig");
  TinyRanksFile(dir, {"ab", "abc"});
  auto t = Tokenizer::LoadFromDir(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->SpecialId("<|endoftext|>"), 258);
  EXPECT_EQ(*(*t)->SpecialId("<|user|>"), 265);
  EXPECT_EQ(*(*t)->EncodeOrdinary("abc ab"), (Ids{257, ' ', 256}));
}

TEST(TokenizerLoadTest, ConfigOverridesSpecialIds) {
  const std::string dir = MakeDir("tok_config");
  TinyRanksFile(dir, {"ab"});
  std::ofstream(dir + "/tokenizer_config.json") << R"({
    "added_tokens_decoder": {
      "300": {"content": "<|user|>", "special": true},
      "301": {"content": "<|custom|>", "special": true}
    },
    "eos_token": "<|endoftext|>"
  })";
  auto t = Tokenizer::LoadFromDir(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->SpecialId("<|user|>"), 300);
  EXPECT_EQ(*(*t)->SpecialId("<|custom|>"), 301);
  EXPECT_EQ(*(*t)->SpecialId("<|endoftext|>"), 257);  // Not overridden: default layout.
  EXPECT_EQ(*(*t)->Encode("<|custom|><|user|>"), (Ids{301, 300}));
  EXPECT_EQ(*(*t)->Decode(Ids{300}), "<|user|>");
  // Ids in the hole between the default specials and 300 are not tokens.
  EXPECT_FALSE((*t)->Decode(Ids{290}).ok());
}

TEST(TokenizerLoadTest, BadConfigsAreErrors) {
  const std::string dir = MakeDir("tok_badconfig");
  TinyRanksFile(dir, {"ab"});
  const std::string cfg = dir + "/tokenizer_config.json";
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not a JSON object"},
      {R"({"added_tokens_decoder": []})", "not an object"},
      {R"({"added_tokens_decoder": {"x": {"content": "<a>"}}})", "not a non-negative integer"},
      {R"({"added_tokens_decoder": {"300": {"special": true}}})", "no non-empty"},
      {R"({"added_tokens_decoder": {"10": {"content": "<a>"}}})", "a BPE rank"},
      {R"({"added_tokens_decoder": {"258": {"content": "<a>"}}})", "another special token"},
      {R"({"added_tokens_decoder": {"2000000000": {"content": "<a>"}}})", "far beyond"},
  };
  for (const auto& [json, needle] : cases) {
    std::ofstream(cfg, std::ios::trunc) << json;
    auto t = Tokenizer::LoadFromDir(dir);
    ASSERT_FALSE(t.ok()) << json;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
    EXPECT_NE(t.status().message().find(needle), absl::string_view::npos) << t.status();
  }
}

TEST(TokenizerLoadTest, BadRankFilesAreErrors) {
  const std::string dir = MakeDir("tok_badranks");
  auto load = [&](const std::string& contents) {
    std::ofstream(dir + "/tokenizer.model", std::ios::trunc | std::ios::binary) << contents;
    return Tokenizer::LoadFromDir(dir);
  };
  EXPECT_EQ(load("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(load("YQ== 0\n!!!! 1\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(load("YQ== 0\nYg== 0\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(load("YQ== 0\nYg== 3\n").status().code(), absl::StatusCode::kInvalidArgument);
  // Parses, but is not byte-level: "b" alone cannot be encoded.
  auto t = load("YQ== 0\n");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not a byte-level"), absl::string_view::npos);
  EXPECT_EQ(Tokenizer::LoadFromDir("/nonexistent").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace glm4v::tokenizer
