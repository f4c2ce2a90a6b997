// One DecoderWorker.Submit call, read on its own thread so the gateway's handler can wait for
// tokens and still notice its own caller's cancellation (and then cancel this call, which makes
// the worker free the sequence's KV blocks).
#pragma once

#include <deque>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"

namespace glm4v {

class WorkerStream {
 public:
  // Starts the call at once. `stub` must outlive this object.
  WorkerStream(internal::DecoderWorker::Stub* stub, const internal::SubmitRequest& request,
               absl::Time deadline);
  // Cancels the call if still open and joins the reader.
  ~WorkerStream();

  enum class Result { kEvent, kTimeout, kEnd };
  // kEvent fills `event` with every event that has arrived, merged in order (tokens and
  // logprobs appended); kEnd fills `status` (the call's final status) and repeats forever.
  Result Next(absl::Duration timeout, internal::TokenEvent* event, grpc::Status* status);

  // Thread-safe; the worker sees CANCELLED.
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  absl::Mutex mu_;
  std::deque<internal::TokenEvent> events_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

}  // namespace glm4v
