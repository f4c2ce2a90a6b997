#include "services/gateway/tokenizer/stop_matcher.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "services/gateway/tokenizer/utf8.h"

namespace glm4v::tokenizer {

absl::StatusOr<StopMatcher> StopMatcher::Create(std::vector<std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("stop string %d is empty", i));
    }
    if (!IsValidUtf8(stops[i])) {
      return absl::InvalidArgumentError(absl::StrFormat("stop string %d is not UTF-8", i));
    }
  }
  return StopMatcher(std::move(stops));
}

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const std::string& s : stops_) max_len_ = std::max(max_len_, s.size());
}

StopMatcher::Result StopMatcher::Push(absl::string_view chunk) {
  Result r;
  if (done()) return r;
  if (stops_.empty()) {
    r.text.assign(chunk.data(), chunk.size());
    return r;
  }
  held_.append(chunk.data(), chunk.size());

  // First-completing match. held_ had no complete match before this chunk, so only matches
  // ending in the new bytes exist; find() on the whole buffer finds them.
  size_t best_end = std::string::npos;
  size_t best_start = 0;
  int best = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    r.text = held_.substr(0, best_start);
    r.matched = best;
    matched_ = best;
    held_.clear();
    return r;
  }

  // Hold the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (size_t len = std::min(held_.size(), max_len_ - 1); len > 0 && hold == 0; --len) {
    const absl::string_view suffix = absl::string_view(held_).substr(held_.size() - len);
    for (const std::string& s : stops_) {
      if (s.size() > len && absl::StartsWith(s, suffix)) {
        hold = len;
        break;
      }
    }
  }
  r.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return r;
}

std::string StopMatcher::Flush() {
  std::string out;
  if (!done()) out.swap(held_);
  held_.clear();
  return out;
}

}  // namespace glm4v::tokenizer
