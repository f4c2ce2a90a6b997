#include "worker/request_stream.h"

#include <utility>

namespace glm4v::worker {

absl::StatusOr<TokenEvent> RequestStream::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !pending_.empty() || closed_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (!pending_.empty()) {
    TokenEvent merged = std::move(pending_.front());
    pending_.pop_front();
    while (!pending_.empty()) {
      TokenEvent& next = pending_.front();
      merged.token_ids.insert(merged.token_ids.end(), next.token_ids.begin(),
                              next.token_ids.end());
      merged.logprobs.insert(merged.logprobs.end(), std::make_move_iterator(next.logprobs.begin()),
                             std::make_move_iterator(next.logprobs.end()));
      merged.finish_reason = next.finish_reason;
      pending_.pop_front();
    }
    if (merged.finish_reason != FinishReason::kNone) final_delivered_ = true;
    return merged;
  }
  if (!error_.ok()) return error_;
  if (final_delivered_) {
    return absl::OutOfRangeError("request " + request_id_ + " already finished");
  }
  return absl::DeadlineExceededError("no output yet for request " + request_id_);
}

bool RequestStream::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

void RequestStream::Push(TokenEvent event) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (event.finish_reason != FinishReason::kNone) closed_ = true;
  pending_.push_back(std::move(event));
}

void RequestStream::Fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  error_ = std::move(status);
}

}  // namespace glm4v::worker
