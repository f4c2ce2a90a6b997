// One DecoderWorker.Submit call, read on the handler's own thread (a blocking read per event:
// one thread wake-up per streamed token). The caller's cancellation reaches the call through a
// process-wide watcher thread that polls every open stream's `caller_cancelled` and cancels
// the call, which makes the worker free the sequence's KV blocks and unblocks the read.
#pragma once

#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"

namespace glm4v {

class WorkerStream {
 public:
  // Starts the call at once. `stub` must outlive this object; `caller_cancelled` (may be empty)
  // is polled from the watcher thread while the stream is open.
  WorkerStream(internal::DecoderWorker::Stub* stub, const internal::SubmitRequest& request,
               absl::Time deadline, std::function<bool()> caller_cancelled = {});
  // Cancels the call if still open and finishes it.
  ~WorkerStream();
  WorkerStream(const WorkerStream&) = delete;
  WorkerStream& operator=(const WorkerStream&) = delete;

  enum class Result { kEvent, kEnd };
  // Blocks for the next event: kEvent fills `event`; kEnd fills `status` (the call's final
  // status; CANCELLED after Cancel or the caller's cancellation) and repeats forever.
  Result Next(internal::TokenEvent* event, grpc::Status* status);

  // Thread-safe; the worker sees CANCELLED.
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<internal::TokenEvent>> reader_;
  std::function<bool()> caller_cancelled_;
  bool ended_ = false;
  grpc::Status final_status_;
};

}  // namespace glm4v
