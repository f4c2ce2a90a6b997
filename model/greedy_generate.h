// Greedy decoding of one sequence on a private, linearly allocated KV cache. Used by the golden
// checker, the tests and the generate CLI (the serving engine has its own scheduler).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tensor.h"
#include "model/decoder.h"
#include "model/image_splice.h"

namespace glm4v {

struct GreedyOptions {
  int max_new_tokens = 16;
  // Generation stops after emitting one of these (the stop id is included in the output).
  std::vector<int32_t> stop_ids;
  int block_size = 16;
  // Prefill in chunks of this many tokens (0 = the whole prompt in one step).
  int prefill_chunk = 0;
  bool return_prompt_logits = false;  // logits of every prompt row
  // KV cache dtype (f32 or bf16); unset = the backend's activation dtype.
  std::optional<DType> kv_dtype;
};

struct GreedyResult {
  std::vector<int32_t> ids;  // generated tokens
  Tensor step_logits;        // host f32 [ids.size(), vocab]: row i is what chose ids[i]
  Tensor prompt_logits;      // host f32 [prompt rows, vocab] if requested
  double prefill_ms = 0;     // wall time of the prompt's steps (the first token's)
  double decode_ms = 0;      // wall time of the decode steps (ids.size() - 1 of them)
};

// `prompt` is a spliced prompt (SpliceImages, or plain text with embedding_rows all -1) and
// `image_features` the concatenated feature rows it refers to ([rows, hidden], or undefined).
absl::StatusOr<GreedyResult> GenerateGreedy(const Decoder& decoder, const SplicedPrompt& prompt,
                                            const Tensor& image_features,
                                            const GreedyOptions& options);

// A SplicedPrompt for text only (positions 0..n-1).
SplicedPrompt TextPrompt(const std::vector<int32_t>& ids);

}  // namespace glm4v
