// glm4v.internal.SubmitRequest (wire) -> worker::EngineRequest.
#pragma once

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "protos/glm4v/internal/worker.pb.h"
#include "worker/engine.h"

namespace glm4v::worker {

// INVALID_ARGUMENT for ids that do not fit int32, image features that do not decode or whose
// hidden size is not the model's, or a PromptImage whose boi_index is not where its
// <|begin_of_image|> is. Id ranges, placeholders and sampling are checked by the engine.
absl::StatusOr<EngineRequest> ToEngineRequest(const internal::SubmitRequest& request,
                                              const ModelConfig& config);

SamplingParams ToSamplingParams(const internal::WorkerSampling& sampling);

}  // namespace glm4v::worker
