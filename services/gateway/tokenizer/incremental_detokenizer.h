// Streaming detokenization: token ids in, complete UTF-8 text out.
//
// A token may end in the middle of a multi-byte character (byte-level BPE splits CJK and emoji),
// so trailing bytes that could still become a character are held until the next token. Text that
// can never become valid (a stray continuation byte, an impossible lead byte, a sequence cut by a
// byte that does not continue it) is emitted as U+FFFD at once. Flush() ends the stream and turns
// a held, unfinished character into one U+FFFD. Invariant: the concatenation of everything
// returned equals Tokenizer::Decode() of all ids pushed.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "services/gateway/tokenizer/tokenizer.h"

namespace glm4v::tokenizer {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer* tokenizer) : tokenizer_(tokenizer) {}

  // Returns the text completed by these ids (possibly empty). INVALID_ARGUMENT for an unknown id,
  // in which case nothing is consumed.
  absl::StatusOr<std::string> Push(TokenId id) { return Push(absl::MakeConstSpan(&id, 1)); }
  absl::StatusOr<std::string> Push(absl::Span<const TokenId> ids);

  // Ends the stream: returns U+FFFD if an unfinished character was held, else "". Resets.
  std::string Flush();

  // Bytes held back waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace glm4v::tokenizer
