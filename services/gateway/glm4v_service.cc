#include "services/gateway/glm4v_service.h"

#include "absl/time/clock.h"
#include "common/logging.h"
#include "services/common/grpc_status.h"
#include "services/common/request_id.h"
#include "services/gateway/response_assembly.h"

namespace glm4v {

grpc::Status Glm4vServiceImpl::Instrumented(const char* method, const v1::GenerateRequest& request,
                                            const std::string& request_id,
                                            const std::function<grpc::Status()>& body) {
  const absl::Time start = absl::Now();
  grpc::Status status;
  if (auto ticket = gate_->TryEnter()) {
    metrics_->inflight->Increment();
    status = body();
    metrics_->inflight->Decrement();
  } else {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway is draining");
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const std::string code = GrpcCodeName(status.error_code());
  metrics_->requests->WithLabels({method, code}).Increment();
  metrics_->request_duration->WithLabels({method}).Observe(seconds);
  const bool client_error = status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                            status.error_code() == grpc::StatusCode::CANCELLED;
  if (status.ok()) {
    LOG_INFO("request done")
        .With("request_id", request_id)
        .With("method", method)
        .With("code", code)
        .With("ms", seconds * 1000);
  } else if (client_error) {
    LOG_INFO("request rejected")
        .With("request_id", request_id)
        .With("method", method)
        .With("code", code)
        .With("error", status.error_message())
        .With("ms", seconds * 1000);
  } else {
    LOG_WARN("request failed")
        .With("request_id", request_id)
        .With("method", method)
        .With("code", code)
        .With("error", status.error_message())
        .With("messages", request.messages_size())
        .With("ms", seconds * 1000);
  }
  return status;
}

grpc::Status Glm4vServiceImpl::GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest*,
                                            v1::ModelInfo* response) {
  *response = runner_->ModelInfo();
  return grpc::Status::OK;
}

grpc::Status Glm4vServiceImpl::Generate(grpc::ServerContext* context,
                                        const v1::GenerateRequest* request,
                                        v1::GenerateResponse* response) {
  const std::string request_id = RequestIdOrNew(request->request_id());
  return Instrumented("Generate", *request, request_id, [&]() {
    response->set_request_id(request_id);
    return runner_->Run(context, *request, request_id,
                        [response](v1::GenerateStreamResponse& chunk) {
                          AppendStreamChunk(chunk, response);
                          return true;
                        });
  });
}

grpc::Status Glm4vServiceImpl::GenerateStream(
    grpc::ServerContext* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateStreamResponse>* writer) {
  const std::string request_id = RequestIdOrNew(request->request_id());
  return Instrumented("GenerateStream", *request, request_id, [&]() {
    return runner_->Run(context, *request, request_id, [writer](v1::GenerateStreamResponse& chunk) {
      return writer->Write(chunk);
    });
  });
}

}  // namespace glm4v
