#include "worker/server/worker_request_conversion.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "services/common/feature_codec.h"

namespace glm4v::worker {

SamplingParams ToSamplingParams(const internal::WorkerSampling& sampling) {
  SamplingParams params;
  params.max_tokens =
      static_cast<int>(std::min<uint32_t>(sampling.max_tokens(), std::numeric_limits<int>::max()));
  params.temperature = sampling.temperature();
  params.top_p = sampling.top_p();
  params.top_k =
      static_cast<int>(std::min<uint32_t>(sampling.top_k(), std::numeric_limits<int>::max()));
  params.repetition_penalty = sampling.repetition_penalty();
  params.presence_penalty = sampling.presence_penalty();
  params.frequency_penalty = sampling.frequency_penalty();
  for (const auto& [id, bias] : sampling.logit_bias()) {
    // Out-of-range ids stay out of range (validation names them) rather than wrapping.
    params.logit_bias.emplace_back(
        static_cast<int32_t>(std::min<uint32_t>(id, std::numeric_limits<int32_t>::max())), bias);
  }
  // Map order is unspecified: sort so the batch lists (and thus the sampling) are deterministic.
  std::sort(params.logit_bias.begin(), params.logit_bias.end());
  if (sampling.has_seed()) params.seed = sampling.seed();
  for (uint32_t id : sampling.stop_token_ids()) {
    // An id beyond int32 can never be generated; dropping it keeps the list meaningful.
    if (id <= static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
      params.stop_token_ids.push_back(static_cast<int32_t>(id));
    }
  }
  params.top_logprobs = static_cast<int>(std::min<uint32_t>(sampling.top_logprobs(), 1 << 20));
  params.logprobs = sampling.logprobs() || params.top_logprobs > 0;
  return params;
}

absl::StatusOr<EngineRequest> ToEngineRequest(const internal::SubmitRequest& request,
                                              const ModelConfig& config) {
  EngineRequest out;
  out.request_id = request.request_id();
  out.prompt_token_ids.reserve(request.prompt_token_ids_size());
  std::vector<int> boi_positions;
  for (int i = 0; i < request.prompt_token_ids_size(); ++i) {
    const uint32_t id = request.prompt_token_ids(i);
    if (id >= static_cast<uint32_t>(config.padded_vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", i, " is ", id,
                                                     ", outside the vocabulary of ",
                                                     config.padded_vocab_size));
    }
    if (static_cast<int>(id) == config.boi_token_id) boi_positions.push_back(i);
    out.prompt_token_ids.push_back(static_cast<int32_t>(id));
  }
  for (int i = 0; i < request.images_size(); ++i) {
    const internal::PromptImage& image = request.images(i);
    if (i >= static_cast<int>(boi_positions.size()) ||
        boi_positions[i] != static_cast<int>(image.boi_index())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image ", i, " claims boi_index ", image.boi_index(),
          " but the prompt's <|begin_of_image|> number ", i, " is ",
          i < static_cast<int>(boi_positions.size()) ? absl::StrCat("at ", boi_positions[i])
                                                     : std::string("missing")));
    }
    ASSIGN_OR_RETURN(Tensor features, DecodeFeatures(image.features()));
    if (features.dim(1) != config.hidden_size) {
      return absl::InvalidArgumentError(absl::StrCat("image ", i, " features have hidden size ",
                                                     features.dim(1), ", the model has ",
                                                     config.hidden_size));
    }
    out.images.push_back({std::move(features), image.features().content_hash()});
  }
  out.sampling = ToSamplingParams(request.sampling());
  return out;
}

}  // namespace glm4v::worker
