#include "services/gateway/worker_stream.h"

#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace glm4v {
namespace {

constexpr absl::Duration kCancellationPoll = absl::Milliseconds(20);

// Polls the open streams' callers and cancels the calls of those who went away.
class CancellationWatcher {
 public:
  static CancellationWatcher& Get() {
    static CancellationWatcher* watcher = new CancellationWatcher();  // lives for the process
    return *watcher;
  }

  void Add(WorkerStream* stream, const std::function<bool()>* cancelled) {
    absl::MutexLock lock(&mu_);
    open_.insert({stream, cancelled});
  }
  // After Remove returns the watcher no longer touches `stream`.
  void Remove(WorkerStream* stream, const std::function<bool()>* cancelled) {
    absl::MutexLock lock(&mu_);
    open_.erase({stream, cancelled});
  }

 private:
  CancellationWatcher() {
    std::thread([this] {
      while (true) {
        absl::SleepFor(kCancellationPoll);
        absl::MutexLock lock(&mu_);
        for (const auto& [stream, cancelled] : open_) {
          if ((*cancelled)()) stream->Cancel();
        }
      }
    }).detach();
  }

  absl::Mutex mu_;
  absl::flat_hash_set<std::pair<WorkerStream*, const std::function<bool()>*>> open_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace

WorkerStream::WorkerStream(internal::DecoderWorker::Stub* stub,
                           const internal::SubmitRequest& request, absl::Time deadline,
                           std::function<bool()> caller_cancelled)
    : caller_cancelled_(std::move(caller_cancelled)) {
  context_.set_deadline(absl::ToChronoTime(deadline));
  reader_ = stub->Submit(&context_, request);
  if (caller_cancelled_) CancellationWatcher::Get().Add(this, &caller_cancelled_);
}

WorkerStream::~WorkerStream() {
  if (caller_cancelled_) CancellationWatcher::Get().Remove(this, &caller_cancelled_);
  if (!ended_) {
    context_.TryCancel();
    internal::TokenEvent ignored;
    while (reader_->Read(&ignored)) {
    }
    reader_->Finish();
  }
}

WorkerStream::Result WorkerStream::Next(internal::TokenEvent* event, grpc::Status* status) {
  if (!ended_) {
    if (reader_->Read(event)) return Result::kEvent;
    final_status_ = reader_->Finish();
    ended_ = true;
  }
  *status = final_status_;
  return Result::kEnd;
}

}  // namespace glm4v
