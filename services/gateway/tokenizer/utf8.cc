#include "services/gateway/tokenizer/utf8.h"

#include <cstdint>

namespace glm4v::tokenizer {
namespace {

// Bounds of the second byte for each lead byte (Unicode Table 3-7); later bytes are 80..BF.
struct LeadInfo {
  uint8_t length;  // 0: never valid as a lead byte.
  uint8_t lo;
  uint8_t hi;
};

LeadInfo Lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // Excludes surrogates.
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // Caps at U+10FFFF.
  return {0, 0, 0};
}

}  // namespace

Utf8Step NextUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const LeadInfo info = Lead(p[0]);
  if (info.length == 1) return {Utf8Step::kValid, 1};
  if (info.length == 0) return {Utf8Step::kInvalid, 1};
  size_t i = 1;
  for (; i < info.length; ++i) {
    if (i >= s.size()) return {Utf8Step::kIncomplete, i};
    const uint8_t lo = i == 1 ? info.lo : 0x80;
    const uint8_t hi = i == 1 ? info.hi : 0xBF;
    if (p[i] < lo || p[i] > hi) return {Utf8Step::kInvalid, i};
  }
  return {Utf8Step::kValid, info.length};
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      __builtin_memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = NextUtf8(s.substr(i));
    if (step.kind != Utf8Step::kValid) return false;
    i += step.length;
  }
  return true;
}

void AppendRepairedUtf8(absl::string_view s, std::string* out) {
  size_t i = 0;
  size_t run_start = 0;  // Start of the pending run of valid bytes, copied in one append.
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = NextUtf8(s.substr(i));
    if (step.kind == Utf8Step::kValid) {
      i += step.length;
      continue;
    }
    out->append(s.data() + run_start, i - run_start);
    out->append(kReplacementChar.data(), kReplacementChar.size());
    i += step.length;
    run_start = i;
  }
  out->append(s.data() + run_start, s.size() - run_start);
}

size_t CompleteUtf8Prefix(absl::string_view s) {
  // An incomplete character is at most 3 bytes, so only the last 3 lead positions matter.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t start = from; start < s.size(); ++start) {
    const uint8_t b = static_cast<uint8_t>(s[start]);
    if (b >= 0x80 && b < 0xC0) continue;  // Continuation byte: not a start.
    // Does the character starting here run off the end while staying a valid prefix?
    const Utf8Step step = NextUtf8(s.substr(start));
    if (step.kind == Utf8Step::kIncomplete) return start;
  }
  return s.size();
}

}  // namespace glm4v::tokenizer
