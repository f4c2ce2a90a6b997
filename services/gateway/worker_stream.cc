#include "services/gateway/worker_stream.h"

#include <utility>

namespace glm4v {

WorkerStream::WorkerStream(internal::DecoderWorker::Stub* stub,
                           const internal::SubmitRequest& request, absl::Time deadline) {
  context_.set_deadline(absl::ToChronoTime(deadline));
  // The request is copied into the call before Submit returns, so the thread does not need it.
  std::unique_ptr<grpc::ClientReader<internal::TokenEvent>> reader =
      stub->Submit(&context_, request);
  reader_ = std::thread([this, reader = std::move(reader)]() {
    internal::TokenEvent event;
    while (reader->Read(&event)) {
      absl::MutexLock lock(&mu_);
      events_.push_back(std::move(event));
      event = internal::TokenEvent();
    }
    grpc::Status status = reader->Finish();
    absl::MutexLock lock(&mu_);
    final_status_ = std::move(status);
    ended_ = true;
  });
}

WorkerStream::~WorkerStream() {
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    ended = ended_;
  }
  if (!ended) context_.TryCancel();
  reader_.join();
}

WorkerStream::Result WorkerStream::Next(absl::Duration timeout, internal::TokenEvent* event,
                                        grpc::Status* status) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !events_.empty() || ended_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return Result::kTimeout;
  if (!events_.empty()) {
    *event = std::move(events_.front());
    events_.pop_front();
    // Whatever else already arrived goes out in the same response: under load the handler
    // writes once per few tokens instead of once per token. First-event fields stay the
    // earliest's; the finish reason is the last's.
    while (!events_.empty()) {
      internal::TokenEvent& next = events_.front();
      event->mutable_token_ids()->MergeFrom(next.token_ids());
      for (internal::TokenLogprobSet& set : *next.mutable_logprobs()) {
        event->add_logprobs()->Swap(&set);
      }
      if (next.finish_reason() != internal::WORKER_FINISH_REASON_UNSPECIFIED) {
        event->set_finish_reason(next.finish_reason());
      }
      events_.pop_front();
    }
    return Result::kEvent;
  }
  *status = final_status_;
  return Result::kEnd;
}

}  // namespace glm4v
