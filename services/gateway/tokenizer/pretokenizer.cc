#include "services/gateway/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace glm4v::tokenizer {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match scratch: created on a thread's first Split, reused for every later call.
struct ThreadScratch {
  ThreadScratch() {
    match_data = pcre2_match_data_create(1, nullptr);
    // The default 32 KiB machine-stack JIT area can run out on long runs of whitespace under
    // `\s+(?!\S)`; give the JIT a growable heap stack instead.
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (context != nullptr && jit_stack != nullptr) {
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~ThreadScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(match_data);
  }
  pcre2_match_data* match_data = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
};

// Unicode White_Space, which is what \s means in tiktoken's regex engine (Rust regex). PCRE2's UCP
// \s also matches U+180E (no longer a space since Unicode 6.3), so \s and \S are spelled out.
constexpr absl::string_view kWhiteSpace =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

}  // namespace

std::string RewriteWhitespaceClasses(absl::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        absl::StrAppend(&out, in_class ? "" : "[", kWhiteSpace, in_class ? "" : "]");
      } else if (e == 'S' && !in_class) {
        absl::StrAppend(&out, "[^", kWhiteSpace, "]");
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Pretokenizer>> Pretokenizer::Create(absl::string_view pattern) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string compiled = RewriteWhitespaceClasses(pattern);
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "pre-tokenizer pattern does not compile at offset %d: %s", error_offset,
        Pcre2Message(error)));
  }
  const int jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  if (jit != 0) {
    pcre2_code_free(code);
    return absl::InternalError("PCRE2 JIT compile failed: " + Pcre2Message(jit));
  }
  return std::unique_ptr<Pretokenizer>(new Pretokenizer(code));
}

Pretokenizer::~Pretokenizer() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

absl::Status Pretokenizer::Split(absl::string_view text,
                                 absl::FunctionRef<void(absl::string_view)> on_piece) const {
  thread_local ThreadScratch scratch;
  if (scratch.match_data == nullptr || scratch.context == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate PCRE2 match data");
  }
  const auto* code = static_cast<const pcre2_code*>(code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match_data);
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_jit_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK,
                                   scratch.match_data, scratch.context);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      return absl::InternalError("pre-tokenizer match failed: " + Pcre2Message(rc));
    }
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (start != pos || end <= start) {
      return absl::InternalError(
          absl::StrFormat("pre-tokenizer left text unmatched at byte %d", pos));
    }
    on_piece(text.substr(start, end - start));
    pos = end;
  }
  if (pos != text.size()) {
    return absl::InternalError(
        absl::StrFormat("pre-tokenizer left text unmatched at byte %d", pos));
  }
  return absl::OkStatus();
}

}  // namespace glm4v::tokenizer
