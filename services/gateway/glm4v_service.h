// glm4v.v1.Glm4vService, the public API: Generate (unary), GenerateStream and GetModelInfo.
#pragma once

#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/drain_gate.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/generation_runner.h"

namespace glm4v {

class Glm4vServiceImpl final : public v1::Glm4vService::Service {
 public:
  // Nothing owned.
  Glm4vServiceImpl(const GenerationRunner* runner, DrainGate* gate, const GatewayMetrics* metrics)
      : runner_(runner), gate_(gate), metrics_(metrics) {}

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override;
  grpc::Status GenerateStream(grpc::ServerContext* context, const v1::GenerateRequest* request,
                              grpc::ServerWriter<v1::GenerateStreamResponse>* writer) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest* request,
                            v1::ModelInfo* response) override;

 private:
  // Gate, in-flight gauge, request metrics and the per-request log line around `body`.
  grpc::Status Instrumented(const char* method, const v1::GenerateRequest& request,
                            const std::string& request_id,
                            const std::function<grpc::Status()>& body);

  const GenerationRunner* runner_;
  DrainGate* gate_;
  const GatewayMetrics* metrics_;
};

}  // namespace glm4v
