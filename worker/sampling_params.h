// Per-request sampling parameters (mirrors glm4v.internal.WorkerSampling).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace glm4v::worker {

struct SamplingParams {
  // Maximum generated tokens; 0 = until a stop id or the model/cache length limit.
  int max_tokens = 16;
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;        // 1 = off
  int top_k = 0;             // 0 = off
  // CTRL-style penalty over tokens seen in the prompt and the output; 1 = off.
  float repetition_penalty = 1.0f;
  // OpenAI's additive penalties over generated tokens: a token generated c times loses
  // c * frequency_penalty + (c > 0) * presence_penalty; 0 = off. Applied after the repetition
  // penalty, together with logit_bias, before temperature.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // (id, bias) added to the id's logit; ids unique.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Unset: the engine draws a random seed at admission.
  std::optional<uint64_t> seed;
  // Complete list of ids that end the request (the model's eos ids are not added implicitly).
  std::vector<int32_t> stop_token_ids;
  // Stop ids are suppressed until this many tokens were generated.
  int min_tokens = 0;
  // Report the chosen token's log-probability (implied by top_logprobs > 0).
  bool logprobs = false;
  // Number of most likely alternatives reported per token (0 = none).
  int top_logprobs = 0;

  bool has_additive_adjustments() const {
    return presence_penalty != 0.0f || frequency_penalty != 0.0f || !logit_bias.empty();
  }
  bool greedy() const { return temperature == 0.0f || top_k == 1; }
};

// INVALID_ARGUMENT naming the offending field.
absl::Status ValidateSamplingParams(const SamplingParams& params, int vocab_size,
                                    int max_top_logprobs);

}  // namespace glm4v::worker
