#include "worker/server/worker_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "services/common/grpc_status.h"
#include "services/common/request_id.h"
#include "worker/server/worker_request_conversion.h"

namespace glm4v::worker {
namespace {

internal::WorkerFinishReason ToWire(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return internal::WORKER_FINISH_REASON_STOP;
    case FinishReason::kLength:
      return internal::WORKER_FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return internal::WORKER_FINISH_REASON_CANCELLED;
    case FinishReason::kNone:
      break;
  }
  return internal::WORKER_FINISH_REASON_UNSPECIFIED;
}

void ToWire(const TokenEvent& event, internal::TokenEvent* out) {
  for (int32_t id : event.token_ids) out->add_token_ids(static_cast<uint32_t>(id));
  for (const TokenLogprobs& lp : event.logprobs) {
    internal::TokenLogprobSet* set = out->add_logprobs();
    set->mutable_chosen()->set_token_id(lp.chosen.token_id);
    set->mutable_chosen()->set_logprob(lp.chosen.logprob);
    for (const TokenLogprob& top : lp.top) {
      internal::Logprob* alt = set->add_top();
      alt->set_token_id(top.token_id);
      alt->set_logprob(top.logprob);
    }
  }
  out->set_finish_reason(ToWire(event.finish_reason));
  out->set_prompt_tokens(event.prompt_tokens);
  out->set_cached_prompt_tokens(event.cached_prompt_tokens);
  out->set_queue_ms(event.queue_ms);
  out->set_prefill_ms(event.prefill_ms);
}

}  // namespace

grpc::Status WorkerService::Submit(grpc::ServerContext* context,
                                   const internal::SubmitRequest* request,
                                   grpc::ServerWriter<internal::TokenEvent>* writer) {
  auto ticket = gate_->TryEnter();
  if (!ticket) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker is draining");
  if (backend_health_) {
    if (absl::Status health = backend_health_(); !health.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(health.message()));
    }
  }
  const absl::Time start = absl::Now();

  absl::StatusOr<EngineRequest> engine_request = ToEngineRequest(*request, engine_->model_config());
  if (!engine_request.ok()) return ToGrpcStatus(engine_request.status());
  if (engine_request->request_id.empty()) engine_request->request_id = NewRequestId();
  const std::string request_id = engine_request->request_id;
  const int prompt_len = static_cast<int>(engine_request->prompt_token_ids.size());
  const int images = static_cast<int>(engine_request->images.size());

  absl::StatusOr<std::shared_ptr<RequestStream>> stream =
      engine_->Submit(std::move(*engine_request));
  if (!stream.ok()) {
    LOG_WARN("submit refused").With("request_id", request_id).With("error", stream.status());
    return ToGrpcStatus(stream.status());
  }
  int tokens = 0;
  grpc::Status status = StreamTokens(context, request_id, stream->get(), writer, &tokens);
  LOG_INFO("sequence done")
      .With("request_id", request_id)
      .With("prompt_ids", prompt_len)
      .With("images", images)
      .With("tokens", tokens)
      .With("code", GrpcCodeName(status.error_code()))
      .With("ms", absl::ToDoubleMilliseconds(absl::Now() - start));
  return status;
}

grpc::Status WorkerService::StreamTokens(grpc::ServerContext* context,
                                         const std::string& request_id, RequestStream* stream,
                                         grpc::ServerWriter<internal::TokenEvent>* writer,
                                         int* tokens) {
  while (true) {
    absl::StatusOr<TokenEvent> event = stream->Next(kCancelPollInterval);
    if (absl::IsDeadlineExceeded(event.status())) {
      if (context->IsCancelled()) {
        engine_->Cancel(request_id);
        return grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled by the caller");
      }
      continue;
    }
    if (absl::IsOutOfRange(event.status())) return grpc::Status::OK;
    if (!event.ok()) return ToGrpcStatus(event.status());
    *tokens += static_cast<int>(event->token_ids.size());
    internal::TokenEvent wire;
    ToWire(*event, &wire);
    if (!writer->Write(wire)) {
      // The caller is gone: stop generating for nobody.
      engine_->Cancel(request_id);
      return grpc::Status(grpc::StatusCode::CANCELLED, "caller went away");
    }
    if (event->finish_reason != FinishReason::kNone) return grpc::Status::OK;
  }
}

grpc::Status WorkerService::Cancel(grpc::ServerContext*, const internal::CancelRequest* request,
                                   internal::CancelResponse* response) {
  response->set_found(engine_->Cancel(request->request_id()));
  return grpc::Status::OK;
}

grpc::Status WorkerService::GetStats(grpc::ServerContext*, const internal::StatsRequest*,
                                     internal::WorkerStats* response) {
  const EngineStats stats = engine_->Stats();
  response->set_running(stats.running);
  response->set_waiting(stats.waiting);
  response->set_kv_blocks_total(stats.kv_blocks_total);
  response->set_kv_blocks_used(stats.kv_blocks_used);
  response->set_kv_block_size(stats.kv_block_size);
  response->set_prefix_cache_blocks(stats.prefix_cache_blocks);
  response->set_completed_requests(stats.completed_requests);
  response->set_tensor_parallel_size(tensor_parallel_size_);
  const bool backend_ok = !backend_health_ || backend_health_().ok();
  response->set_healthy(stats.healthy && stats.accepting && !gate_->draining() && backend_ok);
  response->set_max_model_len(stats.max_model_len);
  return grpc::Status::OK;
}

}  // namespace glm4v::worker
