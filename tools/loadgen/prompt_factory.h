// Synthetic requests for load generation: either pre-tokenized prompts of random ids (exact
// prompt lengths, no tokenizer cost on the client) or chat messages of generated words (the full
// gateway path: chat template + tokenizer), a chosen fraction of them with an image.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "protos/glm4v/v1/glm4v.pb.h"

namespace glm4v::loadgen {

struct PromptOptions {
  bool chat = false;           // false: prompt_token_ids
  int input_len = 128;         // tokens (token mode) or words (chat mode)
  double range_ratio = 0.0;    // lengths uniform in input_len * [1 - r, 1 + r]
  int output_len = 64;         // max_tokens
  bool ignore_eos = true;      // fixed output lengths, as serving benchmarks do
  float temperature = 0.0f;
  // Random prompt ids are drawn from [token_id_min, token_id_max): keep it below the special
  // ids so that no prompt accidentally holds an image marker or a stop id.
  uint32_t token_id_min = 0;
  uint32_t token_id_max = 151329;
  // The image triple of the prompt-ids form: <|begin_of_image|> <|endoftext|> <|end_of_image|>.
  uint32_t boi_id = 151339, placeholder_id = 151329, eoi_id = 151340;
  double image_fraction = 0.0;
  std::string image_bytes;     // PNG/JPEG, required when image_fraction > 0
  std::string image_mime;

  // Multi-turn workload (chat mode; conversations > 0): `conversations` conversations, each
  // about one of `images` (in turn) under one shared system prompt of `system_prompt_words`
  // words; request k is turn k / conversations of conversation k % conversations, carrying the
  // whole conversation so far (earlier questions and fixed short answers), up to `turns` turns,
  // then the conversations start over with new questions (a new pass). With turns = 1 and no
  // system prompt: independent questions about a few images. Prefix caching and cache-aware
  // routing show here.
  int conversations = 0;
  int turns = 4;
  int system_prompt_words = 200;
  std::vector<std::string> images;  // PNG/JPEG bytes (mime detected by the server)
};

// Image-marker ids from the config, and random ids kept below its lowest special id.
void ApplyModelConfig(const ModelConfig& config, PromptOptions* options);

class PromptFactory {
 public:
  static absl::StatusOr<PromptFactory> Create(PromptOptions options, uint64_t seed);

  // The next request; `has_image` tells whether it carries the image.
  glm4v::v1::GenerateRequest Next(bool* has_image);

 private:
  PromptFactory(PromptOptions options, uint64_t seed) : options_(std::move(options)), rng_(seed) {}
  int DrawLength();
  glm4v::v1::GenerateRequest NextTurn(bool* has_image);
  // max_tokens, temperature, ignore_eos and a per-request seed.
  void SetSampling(glm4v::v1::GenerateRequest* req) const;

  PromptOptions options_;
  std::mt19937_64 rng_;
  uint64_t counter_ = 0;
  std::string system_prompt_;
};

}  // namespace glm4v::loadgen
