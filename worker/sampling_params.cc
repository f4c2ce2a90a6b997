#include "worker/sampling_params.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace glm4v::worker {

absl::Status ValidateSamplingParams(const SamplingParams& params, int vocab_size,
                                    int max_top_logprobs) {
  if (params.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_tokens must be >= 0, got %d", params.max_tokens));
  }
  if (!std::isfinite(params.temperature) || params.temperature < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrFormat("temperature must be finite and >= 0, got %g", params.temperature));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("top_p must be in (0, 1], got %g", params.top_p));
  }
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("top_k must be >= 0, got %d", params.top_k));
  }
  if (!std::isfinite(params.repetition_penalty) || params.repetition_penalty <= 0.0f) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "repetition_penalty must be finite and > 0, got %g", params.repetition_penalty));
  }
  for (float penalty : {params.presence_penalty, params.frequency_penalty}) {
    if (!(penalty >= -2.0f && penalty <= 2.0f)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "presence_penalty and frequency_penalty must be in [-2, 2], got %g", penalty));
    }
  }
  for (const auto& [id, bias] : params.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("logit_bias token id %d outside [0, %d)", id, vocab_size));
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("logit_bias for token %d must be in [-100, 100], got %g", id, bias));
    }
  }
  for (int32_t id : params.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("stop token id %d outside [0, %d)", id, vocab_size));
    }
  }
  if (params.min_tokens < 0 ||
      (params.max_tokens > 0 && params.min_tokens > params.max_tokens)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "min_tokens must be in [0, max_tokens], got %d", params.min_tokens));
  }
  if (params.top_logprobs < 0 || params.top_logprobs > max_top_logprobs) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "top_logprobs must be in [0, %d], got %d", max_top_logprobs, params.top_logprobs));
  }
  return absl::OkStatus();
}

}  // namespace glm4v::worker
