#include "services/gateway/response_assembly.h"

namespace glm4v {

void AppendStreamChunk(v1::GenerateStreamResponse& chunk, v1::GenerateResponse* response) {
  response->mutable_text()->append(chunk.text_delta());
  response->mutable_token_ids()->MergeFrom(chunk.token_ids());
  response->mutable_logprobs()->MergeFrom(chunk.logprobs());
  if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    response->set_finish_reason(chunk.finish_reason());
    response->mutable_usage()->Swap(chunk.mutable_usage());
    response->mutable_timings()->Swap(chunk.mutable_timings());
    response->set_matched_stop(chunk.matched_stop());
  }
}

}  // namespace glm4v
