#include "tools/loadgen/prompt_factory.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace glm4v::loadgen {
namespace {

// Plain words so chat prompts tokenize to roughly one token per word.
constexpr const char* kWords[] = {
    "the",   "image", "shows", "a",     "small", "red",   "house", "near",  "river", "with",
    "trees", "and",   "blue",  "sky",   "what",  "is",    "in",    "this",  "photo", "describe",
    "color", "light", "cat",   "dog",   "road",  "car",   "green", "field", "cloud", "water"};

}  // namespace

void ApplyModelConfig(const ModelConfig& config, PromptOptions* options) {
  options->boi_id = static_cast<uint32_t>(config.boi_token_id);
  options->eoi_id = static_cast<uint32_t>(config.eoi_token_id);
  // The placeholder between the markers is <|endoftext|>, the first end-of-turn id.
  options->placeholder_id = static_cast<uint32_t>(
      config.eos_token_ids.empty() ? config.pad_token_id : config.eos_token_ids[0]);
  int lowest_special = config.padded_vocab_size;
  for (int id : config.eos_token_ids) lowest_special = std::min(lowest_special, id);
  for (int id : {config.boi_token_id, config.eoi_token_id, config.pad_token_id}) {
    lowest_special = std::min(lowest_special, id);
  }
  options->token_id_max = static_cast<uint32_t>(lowest_special);
}

absl::StatusOr<PromptFactory> PromptFactory::Create(PromptOptions options, uint64_t seed) {
  if (options.input_len < 1) return absl::InvalidArgumentError("input_len must be >= 1");
  if (options.output_len < 1) return absl::InvalidArgumentError("output_len must be >= 1");
  if (options.range_ratio < 0 || options.range_ratio >= 1) {
    return absl::InvalidArgumentError("range_ratio must be in [0, 1)");
  }
  if (options.image_fraction < 0 || options.image_fraction > 1) {
    return absl::InvalidArgumentError("image_fraction must be in [0, 1]");
  }
  if (options.image_fraction > 0 && options.image_bytes.empty()) {
    return absl::InvalidArgumentError("image_fraction > 0 needs an image");
  }
  if (options.conversations < 0 || (options.conversations > 0 && (!options.chat ||
                                                                    options.turns < 1))) {
    return absl::InvalidArgumentError(
        "a multi-turn workload needs chat prompts, conversations >= 1 and turns >= 1");
  }
  if (options.conversations > 0 && options.images.empty()) {
    return absl::InvalidArgumentError("a multi-turn workload needs at least one image");
  }
  if (!options.chat && options.token_id_max <= options.token_id_min) {
    return absl::InvalidArgumentError(absl::StrCat("empty token id range [", options.token_id_min,
                                                   ", ", options.token_id_max, ")"));
  }
  PromptFactory factory(std::move(options), seed);
  std::uniform_int_distribution<size_t> word(0, std::size(kWords) - 1);
  for (int i = 0; i < factory.options_.system_prompt_words; ++i) {
    absl::StrAppend(&factory.system_prompt_, i ? " " : "", kWords[word(factory.rng_)]);
  }
  return factory;
}

void PromptFactory::SetSampling(glm4v::v1::GenerateRequest* req) const {
  glm4v::v1::SamplingParams* sp = req->mutable_sampling();
  sp->set_max_tokens(static_cast<uint32_t>(options_.output_len));
  sp->set_temperature(options_.temperature);
  sp->set_ignore_eos(options_.ignore_eos);
  sp->set_seed(counter_);
}

glm4v::v1::GenerateRequest PromptFactory::NextTurn(bool* has_image) {
  const uint64_t k = counter_++;
  const int conversations = options_.conversations;
  const int conversation = static_cast<int>(k % conversations);
  const int turn = static_cast<int>((k / conversations) % options_.turns);
  // Each pass over the conversations asks new questions (same history within a pass).
  const uint64_t pass = k / (static_cast<uint64_t>(conversations) * options_.turns);
  glm4v::v1::GenerateRequest req;
  req.set_request_id(absl::StrCat("loadgen-", k));
  if (!system_prompt_.empty()) {
    glm4v::v1::ChatMessage* system = req.add_messages();
    system->set_role(glm4v::v1::ROLE_SYSTEM);
    system->add_content()->set_text(system_prompt_);
  }
  for (int t = 0; t <= turn; ++t) {
    glm4v::v1::ChatMessage* user = req.add_messages();
    user->set_role(glm4v::v1::ROLE_USER);
    if (t == 0) {
      user->add_content()->mutable_image()->set_data(
          options_.images[conversation % options_.images.size()]);
    }
    user->add_content()->set_text(absl::StrCat(
        "What is in the picture near the ",
        kWords[(conversation * 7 + t + pass * 11) % std::size(kWords)], " (question ", t,
        ", conversation ", conversation, ", pass ", pass, ")?"));
    if (t < turn) {
      glm4v::v1::ChatMessage* answer = req.add_messages();
      answer->set_role(glm4v::v1::ROLE_ASSISTANT);
      answer->add_content()->set_text(absl::StrCat("It is a ", kWords[t % std::size(kWords)],
                                                   " ", kWords[(t + 3) % std::size(kWords)], "."));
    }
  }
  *has_image = true;
  SetSampling(&req);
  return req;
}

int PromptFactory::DrawLength() {
  const double lo = options_.input_len * (1 - options_.range_ratio);
  const double hi = options_.input_len * (1 + options_.range_ratio);
  std::uniform_real_distribution<double> d(lo, std::nextafter(hi, hi + 1));
  return std::max(1, static_cast<int>(std::lround(d(rng_))));
}

glm4v::v1::GenerateRequest PromptFactory::Next(bool* has_image) {
  if (options_.conversations > 0) return NextTurn(has_image);
  glm4v::v1::GenerateRequest req;
  req.set_request_id(absl::StrCat("loadgen-", counter_++));
  std::bernoulli_distribution image_coin(options_.image_fraction);
  *has_image = options_.image_fraction > 0 && image_coin(rng_);
  const int len = DrawLength();

  glm4v::v1::ImagePart image;
  if (*has_image) {
    image.set_data(options_.image_bytes);
    image.set_mime_type(options_.image_mime);
  }
  if (options_.chat) {
    glm4v::v1::ChatMessage* msg = req.add_messages();
    msg->set_role(glm4v::v1::ROLE_USER);
    if (*has_image) *msg->add_content()->mutable_image() = image;
    std::string text;
    std::uniform_int_distribution<size_t> word(0, std::size(kWords) - 1);
    for (int i = 0; i < len; ++i) absl::StrAppend(&text, i ? " " : "", kWords[word(rng_)]);
    msg->add_content()->set_text(text);
  } else {
    if (*has_image) {
      req.add_prompt_token_ids(options_.boi_id);
      req.add_prompt_token_ids(options_.placeholder_id);
      req.add_prompt_token_ids(options_.eoi_id);
      *req.add_images() = image;
    }
    std::uniform_int_distribution<uint32_t> id(options_.token_id_min, options_.token_id_max - 1);
    for (int i = 0; i < len; ++i) req.add_prompt_token_ids(id(rng_));
  }
  SetSampling(&req);
  return req;
}

}  // namespace glm4v::loadgen
