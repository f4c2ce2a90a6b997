// UTF-8 validation and repair shared by the encoder (user text) and the streaming detokenizer.
//
// Invalid input is repaired by the Unicode "maximal subpart" rule (Unicode 15, §3.9, U+FFFD
// substitution): each maximal prefix of a would-be character that cannot be completed becomes one
// U+FFFD. This rule is local, so repairing a stream piece by piece gives the same text as
// repairing it all at once — the property the incremental detokenizer relies on.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace glm4v::tokenizer {

inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Result of looking at the character that starts at some position.
struct Utf8Step {
  enum Kind { kValid, kInvalid, kIncomplete };
  Kind kind;
  // kValid: the character's length. kInvalid: length of the maximal subpart to replace (>= 1).
  // kIncomplete: number of bytes available, all a valid prefix of a longer character.
  size_t length;
};

// Classifies the character starting at s[0] (s non-empty).
Utf8Step NextUtf8(absl::string_view s);

// True when s is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// Appends s to out with every invalid sequence (including a truncated one at the end) replaced
// by U+FFFD.
void AppendRepairedUtf8(absl::string_view s, std::string* out);

// Length of the longest prefix of s that is complete, valid-or-repairable text: everything except
// a trailing incomplete character, which a later byte could still complete.
size_t CompleteUtf8Prefix(absl::string_view s);

}  // namespace glm4v::tokenizer
