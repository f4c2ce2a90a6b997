// The per-request output channel between the engine's step loop (producer) and a caller such as
// a gRPC sync handler (consumer, blocking in Next with a timeout).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/sampler.h"
#include "worker/sequence.h"

namespace glm4v::worker {

struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // empty unless top_logprobs was requested
};

struct TokenEvent {
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprobs> logprobs;  // one per token when logprobs were requested, else empty
  FinishReason finish_reason = FinishReason::kNone;  // set on the last event only
  // Set on the first event of a request (0 on later ones).
  int prompt_tokens = 0;         // spliced prompt length (rows)
  int cached_prompt_tokens = 0;  // rows reused from the prefix cache
  double queue_ms = 0;           // arrival -> first scheduled
  double prefill_ms = 0;         // first scheduled -> first token
};

class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}

  const std::string& request_id() const { return request_id_; }

  // Waits up to `timeout` for output and returns everything pending merged into one event
  // (tokens in order, first-event fields from the earliest, finish reason from the last).
  // DEADLINE_EXCEEDED: nothing arrived in time (call again). OUT_OF_RANGE: the final event was
  // already returned. Any other error: the request failed; tokens produced before the failure
  // are returned by earlier calls first.
  absl::StatusOr<TokenEvent> Next(absl::Duration timeout);

  // True once the final event or an error was pushed.
  bool closed() const;

  // Producer side (the engine). Events after the stream closed are dropped.
  void Push(TokenEvent event);
  void Fail(absl::Status status);

 private:
  const std::string request_id_;
  mutable absl::Mutex mu_;
  std::deque<TokenEvent> pending_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool final_delivered_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v::worker
