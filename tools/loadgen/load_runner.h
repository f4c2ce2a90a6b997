// Drives requests at a Glm4vService with the gRPC callback API: arrivals paced by an
// ArrivalProcess, optionally capped at a number in flight, bounded by a request count and/or a
// duration; records each request as the client saw it. Also used by the reliability tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"
#include "tools/loadgen/arrivals.h"
#include "tools/loadgen/prompt_factory.h"
#include "tools/loadgen/report.h"

namespace glm4v::loadgen {

struct RunOptions {
  ArrivalKind arrival = ArrivalKind::kPoisson;
  double request_rate = 0;   // req/s; <= 0: no pacing
  int max_concurrency = 0;   // 0: unlimited
  int num_requests = 0;      // 0: unbounded (then duration_s must be set)
  double duration_s = 0;     // stop sending after this long; 0: unbounded
  bool stream = true;
  // After sending stops, wait this long for answers, then cancel what is left (those count as
  // CANCELLED, never silently dropped).
  double drain_timeout_s = 60;
  double request_timeout_s = 0;  // per-call gRPC deadline; 0: none
  uint64_t seed = 0;
  std::string authorization;  // "Bearer KEY" sent with every call; empty: none
};

struct RunResult {
  std::vector<RequestRecord> records;  // one per request sent, in completion order
  double duration_s = 0;               // first send -> last answer
};

// Returns once every call it started has ended and been destroyed: nothing of them holds
// `channel` any more, so the caller may drop it (and shut gRPC down) at once.
RunResult RunLoad(const std::shared_ptr<grpc::Channel>& channel, PromptFactory& prompts,
                  const RunOptions& options);

}  // namespace glm4v::loadgen
