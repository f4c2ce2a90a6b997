// Detects stop strings in streamed text, including ones split across chunks (tokens).
//
// Text that could be the start of a stop string is held back until it is resolved. The match
// reported is the one that completes first in the stream (earliest end; on a tie the earliest
// start), so the outcome does not depend on how the text was chunked. On a match, text is
// emitted only up to the stop string's start and everything after is dropped.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::tokenizer {

class StopMatcher {
 public:
  // Stop strings must be non-empty and valid UTF-8 (so held-back text starts on a character
  // boundary of valid input).
  static absl::StatusOr<StopMatcher> Create(std::vector<std::string> stops);

  struct Result {
    std::string text;  // Safe to emit now.
    int matched = -1;  // Index into the stop strings of the match, or -1.
  };
  // Feeds the next chunk. After a match, further pushes return nothing.
  Result Push(absl::string_view chunk);
  // End of stream without a match: releases the held-back text.
  std::string Flush();

  bool done() const { return matched_ >= 0; }
  int matched() const { return matched_; }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  explicit StopMatcher(std::vector<std::string> stops);

  std::vector<std::string> stops_;
  size_t max_len_ = 0;
  std::string held_;
  int matched_ = -1;
};

}  // namespace glm4v::tokenizer
