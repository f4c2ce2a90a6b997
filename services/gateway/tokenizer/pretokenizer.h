// Splits text into the pieces that BPE encodes independently, with GLM-4's (= cl100k's) regex.
//
// Runs on PCRE2 with UTF + UCP (so \p{L}, \s etc. are Unicode-aware, as in tiktoken's fancy-regex)
// and JIT. \s is pinned to Unicode White_Space, tiktoken's meaning. \p{L}/\p{N} follow the system
// PCRE2's Unicode tables, which may be a version behind tiktoken's for newly assigned characters. The compiled pattern is shared and immutable; match data and the JIT stack are per
// thread, so one Pretokenizer serves all gateway threads without locks or per-call allocation.
#pragma once

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::tokenizer {

// GLM-4's pre-tokenizer pattern (identical to tiktoken's cl100k_base).
inline constexpr absl::string_view kGlm4Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// `pattern` with \s / \S replaced by explicit Unicode White_Space classes (see pretokenizer.cc).
// \S is only supported outside character classes (where [^...] can express it).
std::string RewriteWhitespaceClasses(absl::string_view pattern);

class Pretokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Pretokenizer>> Create(
      absl::string_view pattern = kGlm4Pattern);
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Calls on_piece for each match, left to right. `text` must be valid UTF-8 (the caller checks;
  // PCRE2's own check is skipped). Text between matches is never dropped by this pattern, since
  // its last alternative `\s+` and the others cover every character; a gap would be an error.
  absl::Status Split(absl::string_view text,
                     absl::FunctionRef<void(absl::string_view)> on_piece) const;

 private:
  explicit Pretokenizer(void* code) : code_(code) {}
  void* code_;  // pcre2_code*, kept opaque so users need not include pcre2.h.
};

}  // namespace glm4v::tokenizer
