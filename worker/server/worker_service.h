// glm4v.internal.DecoderWorker over the in-process Engine (rank 0 of a TP group).
//
// Submit streams the engine's token events. Cancellation: a cancelled RPC (client cancel,
// deadline, gateway gone, server shutdown) is noticed within kCancelPollInterval and turned into
// Engine::Cancel, which frees the sequence's KV blocks.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "protos/glm4v/internal/worker.grpc.pb.h"
#include "services/common/drain_gate.h"
#include "worker/engine.h"

namespace glm4v::worker {

class WorkerService final : public internal::DecoderWorker::Service {
 public:
  static constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(20);

  using HealthCheck = std::function<absl::Status()>;

  // Not owned; both must outlive the service. `backend_health` (optional, thread-safe) returns
  // non-OK while the engine's backend cannot serve.
  WorkerService(Engine* engine, DrainGate* gate, int tensor_parallel_size,
                HealthCheck backend_health = nullptr)
      : engine_(engine),
        gate_(gate),
        tensor_parallel_size_(tensor_parallel_size),
        backend_health_(std::move(backend_health)) {}

  grpc::Status Submit(grpc::ServerContext* context, const internal::SubmitRequest* request,
                      grpc::ServerWriter<internal::TokenEvent>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const internal::CancelRequest* request,
                      internal::CancelResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const internal::StatsRequest* request,
                        internal::WorkerStats* response) override;

 private:
  grpc::Status StreamTokens(grpc::ServerContext* context, const std::string& request_id,
                            RequestStream* stream, grpc::ServerWriter<internal::TokenEvent>* writer,
                            int* tokens);

  Engine* engine_;
  DrainGate* gate_;
  const int tensor_parallel_size_;
  const HealthCheck backend_health_;
};

}  // namespace glm4v::worker
