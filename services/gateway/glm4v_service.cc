#include "services/gateway/glm4v_service.h"

#include "absl/time/clock.h"
#include "common/logging.h"
#include "services/common/grpc_status.h"
#include "services/common/request_id.h"
#include "services/gateway/auth/internal_caller.h"
#include "services/gateway/response_assembly.h"

namespace glm4v {

absl::StatusOr<auth::ApiKeyStore::Lease> Glm4vServiceImpl::Authorize(
    const grpc::ServerContext& context, std::string* key_id) const {
  if (api_keys_ == nullptr) return auth::ApiKeyStore::Lease();
  const auto& metadata = context.client_metadata();
  if (auto token = metadata.find(auth::kInternalTokenMetadata);
      !internal_token_.empty() && token != metadata.end() &&
      auth::ConstantTimeEquals(absl::string_view(token->second.data(), token->second.size()),
                               internal_token_)) {
    // The HTTP front's call: its key was checked and its slot is held for the HTTP request.
    auto id = metadata.find(auth::kInternalKeyIdMetadata);
    if (key_id != nullptr && id != metadata.end()) {
      key_id->assign(id->second.data(), id->second.size());
    }
    return auth::ApiKeyStore::Lease();
  }
  auto it = metadata.find("authorization");
  const grpc::string_ref value = it == metadata.end() ? grpc::string_ref() : it->second;
  return api_keys_->Authorize(absl::string_view(value.data(), value.size()), key_id);
}

grpc::Status Glm4vServiceImpl::Instrumented(
    const char* method, const grpc::ServerContext& context, const v1::GenerateRequest& request,
    const std::string& request_id, const std::function<grpc::Status(v1::Usage*)>& body) {
  const absl::Time start = absl::Now();
  grpc::Status status;
  v1::Usage usage;
  std::string key_id;
  auto lease = Authorize(context, &key_id);
  if (!lease.ok()) {
    status = ToGrpcStatus(lease.status());
  } else if (auto ticket = gate_->TryEnter()) {
    metrics::Gauge* key_inflight =
        key_id.empty() ? nullptr : &metrics_->key_inflight->WithLabels({key_id});
    if (key_inflight != nullptr) key_inflight->Increment();
    metrics_->inflight->Increment();
    status = body(&usage);
    metrics_->inflight->Decrement();
    if (key_inflight != nullptr) key_inflight->Decrement();
  } else {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "gateway is draining");
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const std::string code = GrpcCodeName(status.error_code());
  metrics_->requests->WithLabels({method, code}).Increment();
  if (!key_id.empty()) {
    metrics_->key_requests->WithLabels({key_id, code}).Increment();
    metrics_->key_tokens->WithLabels({key_id, "prompt"}).Increment(usage.prompt_tokens());
    metrics_->key_tokens->WithLabels({key_id, "completion"}).Increment(usage.completion_tokens());
  }
  metrics_->request_duration->WithLabels({method}).Observe(seconds);
  const bool client_error = status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                            status.error_code() == grpc::StatusCode::CANCELLED ||
                            status.error_code() == grpc::StatusCode::UNAUTHENTICATED;
  if (status.ok()) {
    LOG_INFO("request done")
        .With("request_id", request_id)
        .With("method", method)
        .With("code", code)
        .With("key_id", key_id)
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

grpc::Status Glm4vServiceImpl::GetModelInfo(grpc::ServerContext* context,
                                            const v1::GetModelInfoRequest*,
                                            v1::ModelInfo* response) {
  auto lease = Authorize(*context);
  if (!lease.ok()) return ToGrpcStatus(lease.status());
  *response = runner_->ModelInfo();
  return grpc::Status::OK;
}

grpc::Status Glm4vServiceImpl::Generate(grpc::ServerContext* context,
                                        const v1::GenerateRequest* request,
                                        v1::GenerateResponse* response) {
  const std::string request_id = RequestIdOrNew(request->request_id());
  return Instrumented("Generate", *context, *request, request_id, [&](v1::Usage* usage) {
    response->set_request_id(request_id);
    grpc::Status status = runner_->Run(context, *request, request_id,
                                       [response](v1::GenerateStreamResponse& chunk) {
                                         AppendStreamChunk(chunk, response);
                                         return true;
                                       });
    *usage = response->usage();
    return status;
  });
}

grpc::Status Glm4vServiceImpl::GenerateStream(
    grpc::ServerContext* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateStreamResponse>* writer) {
  const std::string request_id = RequestIdOrNew(request->request_id());
  return Instrumented("GenerateStream", *context, *request, request_id, [&](v1::Usage* usage) {
    return runner_->Run(context, *request, request_id,
                        [writer, usage](v1::GenerateStreamResponse& chunk) {
                          if (chunk.has_usage()) *usage = chunk.usage();
                          return writer->Write(chunk);
                        });
  });
}

}  // namespace glm4v
