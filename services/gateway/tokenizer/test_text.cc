#include "services/gateway/tokenizer/test_text.h"

#include <cstdio>

namespace glm4v::tokenizer::testing {

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

constexpr const char* kWords[] = {
    "the", "model", "serving", "image", "vision", "token", "of", "and", "a", "to", "in", "is",
    "that", "for", "it", "with", "as", "was", "on", "be", "at", "by", "this", "had", "not", "are",
    "but", "from", "or", "have", "an", "they", "which", "one", "you", "were", "her", "all", "she",
    "there", "would", "their", "we", "him", "been", "has", "when", "who", "will", "more", "no",
    "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can",
    "only", "other", "new", "some", "could", "time", "these", "two", "may", "then", "do",
    "first", "any", "my", "now", "such", "like", "our", "over", "man", "me", "even", "most",
    "made", "after", "also", "did", "many", "before", "must", "through", "back", "years",
    "where", "much", "your", "way", "well", "down", "should", "because", "each", "just",
    "those", "people", "Mr.", "how", "too", "little", "state", "good", "very", "make", "world",
    "still", "own", "see", "men", "work", "long", "get", "here", "between", "both", "life",
    "being", "under", "never", "day", "same", "another", "know", "while", "last", "might",
    "us", "great", "old", "year", "off", "come", "since", "against", "go", "came", "right",
    "used", "take", "three", "don't", "I'm", "we'll", "they've", "it's", "GPU", "Transformer",
    "attention", "naïve", "café", "coöperate", "résumé",
};

constexpr const char* kCode[] = {
    "int main(int argc, char** argv) {\n  return 0;\n}\n",
    "for (size_t i = 0; i < n; ++i) {\n    sum += a[i] * b[i];\n}\n",
    "def forward(self, x):\n    h = self.norm(x)\n    return x + self.mlp(h)\n\n",
    "if (!status.ok()) return status;  // propagate\n",
    "    x = torch.randn(4, 4096, dtype=torch.bfloat16)\n",
    "#include <vector>\n#include \"absl/status/status.h\"\n",
    "const auto [it, inserted] = map.emplace(key, value);\n",
    "\tcase 0x1F: return \"unit separator\";\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n",
    "{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}\n",
};

constexpr const char* kCjk[] = {
    "你好，世界！", "这是一张图片吗？", "图片中有一只猫坐在窗台上。", "机器学习模型需要大量数据。",
    "今天天气很好，我们去公园散步吧。", "日本語のテキストも含まれています。", "東京は大きな都市です。",
    "한국어 문장도 있습니다.", "北京欢迎你", "深度学习（Deep Learning）",
};

constexpr const char* kEmoji[] = {
    "😀", "👍🏽", "🎉", "❤️", "🚀", "👩‍💻", "🇨🇳", "🤖", "✨", "🔥", "😂", "🙏",
};

template <size_t N>
const char* Pick(Rng& rng, const char* const (&list)[N]) {
  return list[rng.Below(N)];
}

}  // namespace

std::string MixedText(size_t bytes, uint64_t seed) {
  Rng rng(seed);
  std::string out;
  out.reserve(bytes + 256);
  while (out.size() < bytes) {
    const uint64_t kind = rng.Below(100);
    if (kind < 55) {  // A prose sentence.
      const int words = 5 + static_cast<int>(rng.Below(20));
      for (int w = 0; w < words; ++w) {
        std::string word = Pick(rng, kWords);
        if (w == 0 && word[0] >= 'a' && word[0] <= 'z') word[0] = word[0] - 'a' + 'A';
        out += word;
        if (w + 1 < words) out += rng.Below(12) == 0 ? ", " : " ";
      }
      out += rng.Below(5) == 0 ? "? " : ". ";
      if (rng.Below(6) == 0) out += "\n\n";
    } else if (kind < 70) {
      out += Pick(rng, kCode);
    } else if (kind < 80) {  // Numbers in various shapes.
      char buf[64];
      switch (rng.Below(4)) {
        case 0:
          std::snprintf(buf, sizeof(buf), "%llu ", static_cast<unsigned long long>(rng.Next() % 10000000000ULL));
          break;
        case 1:
          std::snprintf(buf, sizeof(buf), "%.5f ", static_cast<double>(rng.Below(1000000)) / 997.0);
          break;
        case 2:
          std::snprintf(buf, sizeof(buf), "2024-%02d-%02d ", static_cast<int>(1 + rng.Below(12)),
                        static_cast<int>(1 + rng.Below(28)));
          break;
        default:
          std::snprintf(buf, sizeof(buf), "$%d,%03d.%02d ", static_cast<int>(rng.Below(1000)),
                        static_cast<int>(rng.Below(1000)), static_cast<int>(rng.Below(100)));
      }
      out += buf;
    } else if (kind < 93) {
      out += Pick(rng, kCjk);
      if (rng.Below(3) == 0) out += "\n";
    } else {
      out += Pick(rng, kEmoji);
      out += rng.Below(2) ? " " : "";
    }
  }
  return out;
}

std::string RandomUnicode(Rng& rng, size_t chars) {
  // Ranges chosen to exercise every branch of the pattern: letters of several scripts, digits
  // (ASCII and others), marks, many kinds of whitespace, punctuation, symbols, emoji.
  static constexpr uint32_t kRanges[][2] = {
      {0x20, 0x7E},       {0x20, 0x7E},       {0x09, 0x0D},     {0x41, 0x5A},
      {0xA0, 0xFF},       {0x370, 0x3FF},     {0x400, 0x4FF},   {0x5D0, 0x5EA},
      {0x600, 0x6FF},     {0x900, 0x97F},     {0x300, 0x36F},   {0x2000, 0x200D},
      {0x2028, 0x2029},   {0x3000, 0x303F},   {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0xFF00, 0xFFEF},   {0x1F300, 0x1FAFF}, {0x10000, 0x1007F}, {0x660, 0x669},
      {0x85, 0x85},       {0xE000, 0xE010},   {0xFFF0, 0xFFFD}, {0x1D400, 0x1D7FF},
  };
  std::string out;
  for (size_t i = 0; i < chars; ++i) {
    if (rng.Below(8) == 0) {  // Contractions and newlines are pattern-relevant; boost them.
      static constexpr const char* kBits[] = {"'s", "'T", "'re", "'VE", "'m", "'ll", "'d",
                                              "\r\n", "\n", "  ", "'"};
      out += kBits[rng.Below(sizeof(kBits) / sizeof(kBits[0]))];
      continue;
    }
    const auto& range = kRanges[rng.Below(sizeof(kRanges) / sizeof(kRanges[0]))];
    AppendCodePoint(range[0] + static_cast<uint32_t>(rng.Below(range[1] - range[0] + 1)), &out);
  }
  return out;
}

std::string RandomBytes(Rng& rng, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng.Below(256));
  return out;
}

}  // namespace glm4v::tokenizer::testing
