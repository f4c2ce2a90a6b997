// glm4v.v1.Glm4vService, the public API: Generate (unary), GenerateStream and GetModelInfo.
#pragma once

#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/drain_gate.h"
#include "services/gateway/auth/api_key_store.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/generation_runner.h"

namespace glm4v {

class Glm4vServiceImpl final : public v1::Glm4vService::Service {
 public:
  // Nothing owned. With `api_keys` every call needs metadata `authorization: Bearer KEY`
  // (UNAUTHENTICATED otherwise), or `internal_token` (non-empty) with a key id: a call of this
  // process's HTTP front, which checked the key and holds its slot (auth/internal_caller.h).
  // Health and reflection are other services and stay open.
  Glm4vServiceImpl(const GenerationRunner* runner, DrainGate* gate, const GatewayMetrics* metrics,
                   const auth::ApiKeyStore* api_keys = nullptr, std::string internal_token = "")
      : runner_(runner),
        gate_(gate),
        metrics_(metrics),
        api_keys_(api_keys),
        internal_token_(std::move(internal_token)) {}

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override;
  grpc::Status GenerateStream(grpc::ServerContext* context, const v1::GenerateRequest* request,
                              grpc::ServerWriter<v1::GenerateStreamResponse>* writer) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest* request,
                            v1::ModelInfo* response) override;

 private:
  // The caller's key lease (an empty one without --api_keys_file) or the status refusing it.
  // `key_id` receives the caller's key id once the key is known (also when its limit refuses).
  absl::StatusOr<auth::ApiKeyStore::Lease> Authorize(const grpc::ServerContext& context,
                                                     std::string* key_id = nullptr) const;
  // Key check, gate, in-flight gauge, request metrics and the per-request log line around
  // `body`, which reports the request's token usage through its argument.
  grpc::Status Instrumented(const char* method, const grpc::ServerContext& context,
                            const v1::GenerateRequest& request, const std::string& request_id,
                            const std::function<grpc::Status(v1::Usage*)>& body);

  const GenerationRunner* runner_;
  DrainGate* gate_;
  const GatewayMetrics* metrics_;
  const auth::ApiKeyStore* api_keys_;
  const std::string internal_token_;
};

}  // namespace glm4v
