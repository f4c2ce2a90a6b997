#include "services/gateway/tokenizer/incremental_detokenizer.h"

#include "common/status_macros.h"
#include "services/gateway/tokenizer/utf8.h"

namespace glm4v::tokenizer {

absl::StatusOr<std::string> IncrementalDetokenizer::Push(absl::Span<const TokenId> ids) {
  // Validate all ids first so an error leaves the state untouched.
  for (TokenId id : ids) RETURN_IF_ERROR(tokenizer_->TokenBytes(id).status());
  for (TokenId id : ids) {
    const absl::string_view bytes = *tokenizer_->TokenBytes(id);
    pending_.append(bytes.data(), bytes.size());
  }
  const size_t complete = CompleteUtf8Prefix(pending_);
  std::string out;
  const absl::string_view ready(pending_.data(), complete);
  if (IsValidUtf8(ready)) {
    out.assign(ready.data(), ready.size());
  } else {
    AppendRepairedUtf8(ready, &out);
  }
  pending_.erase(0, complete);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  AppendRepairedUtf8(pending_, &out);
  pending_.clear();
  return out;
}

}  // namespace glm4v::tokenizer
