// The gRPC calls behind one OpenAI request: one GenerateStream per choice (n choices for each
// prompt), their messages merged into one queue for the HTTP side.
//
// Choice k > 0 of a prompt starts only once the prompt's choice 0 sent its first message: its
// prefill is then done and the prompt's KV blocks sit in the worker's prefix cache, where the
// cache-aware routing sends the others; the n sequences share those blocks instead of
// computing the prompt n times.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"

namespace glm4v::openai {

class ChoiceFanout {
 public:
  struct Event {
    int choice = 0;
    bool end = false;  // the choice's call finished with `status` (no message)
    glm4v::v1::GenerateStreamResponse message;
    grpc::Status status;
  };

  // requests[i] is choice i; choices [p * n, p * n + n) answer prompt p. `metadata` travels
  // with every call (the caller's credentials).
  using Metadata = std::vector<std::pair<std::string, std::string>>;
  ChoiceFanout(glm4v::v1::Glm4vService::StubInterface* stub,
               std::vector<glm4v::v1::GenerateRequest> requests, int n, const Metadata& metadata);
  ~ChoiceFanout();  // Cancel()
  ChoiceFanout(const ChoiceFanout&) = delete;
  ChoiceFanout& operator=(const ChoiceFanout&) = delete;

  int num_choices() const { return static_cast<int>(requests_.size()); }

  // The next event, waiting up to `timeout`; false when none came.
  bool Next(absl::Duration timeout, Event* event);
  // Cancels every call (the client left, or one choice failed) and joins the readers.
  // Idempotent.
  void Cancel();

 private:
  void RunChoice(int choice);

  glm4v::v1::Glm4vService::StubInterface* stub_;
  const std::vector<glm4v::v1::GenerateRequest> requests_;
  const int n_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::thread> readers_;

  absl::Mutex mu_;
  absl::CondVar ready_;     // an event was queued
  absl::CondVar started_;   // a prompt's first choice sent a message or ended, or cancel
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> leader_started_ ABSL_GUARDED_BY(mu_);  // per prompt
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex cancel_mu_;  // serializes Cancel()
  bool joined_ ABSL_GUARDED_BY(cancel_mu_) = false;
};

}  // namespace glm4v::openai
