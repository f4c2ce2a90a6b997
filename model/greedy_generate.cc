#include "model/greedy_generate.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include "absl/status/status.h"
#include "common/status_macros.h"

namespace glm4v {

SplicedPrompt TextPrompt(const std::vector<int32_t>& ids) {
  SplicedPrompt p;
  p.token_ids = ids;
  p.positions.resize(ids.size());
  std::iota(p.positions.begin(), p.positions.end(), 0);
  p.embedding_rows.assign(ids.size(), -1);
  p.next_position = static_cast<int32_t>(ids.size());
  return p;
}

absl::StatusOr<GreedyResult> GenerateGreedy(const Decoder& decoder, const SplicedPrompt& prompt,
                                            const Tensor& image_features,
                                            const GreedyOptions& options) {
  const int64_t n = prompt.token_ids.size();
  if (n == 0) return absl::InvalidArgumentError("empty prompt");
  if (options.max_new_tokens < 0 || options.block_size <= 0 || options.prefill_chunk < 0) {
    return absl::InvalidArgumentError("bad greedy options");
  }
  Backend* backend = decoder.backend();
  const int64_t vocab = decoder.config().padded_vocab_size;
  const int64_t capacity = n + std::max(options.max_new_tokens, 1);
  const int num_blocks = static_cast<int>((capacity + options.block_size - 1) / options.block_size);
  ASSIGN_OR_RETURN(PagedKvCache cache,
                   backend->AllocateKvCache(decoder.CacheShape(num_blocks, options.block_size),
                                            options.kv_dtype.value_or(backend->activation_dtype())));
  std::vector<int32_t> block_table(num_blocks);
  std::iota(block_table.begin(), block_table.end(), 0);

  GreedyResult result;
  if (options.return_prompt_logits) result.prompt_logits = Tensor::Empty(DType::kF32, {n, vocab});
  std::vector<float> last_logits(vocab);

  // Prefill, whole or in chunks.
  const auto prefill_start = std::chrono::steady_clock::now();
  const int64_t chunk = options.prefill_chunk == 0 ? n : options.prefill_chunk;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    SequenceChunk seq;
    seq.token_ids.assign(prompt.token_ids.begin() + begin, prompt.token_ids.begin() + end);
    seq.positions.assign(prompt.positions.begin() + begin, prompt.positions.begin() + end);
    if (!prompt.embedding_rows.empty()) {
      seq.embedding_rows.assign(prompt.embedding_rows.begin() + begin,
                                prompt.embedding_rows.begin() + end);
    }
    seq.embeddings = image_features;
    seq.num_cached = static_cast<int32_t>(begin);
    seq.block_table = block_table;
    seq.logits = options.return_prompt_logits ? SequenceChunk::Logits::kAll
                 : end == n                   ? SequenceChunk::Logits::kLast
                                              : SequenceChunk::Logits::kNone;
    DecoderBatch batch;
    batch.sequences.push_back(std::move(seq));
    ASSIGN_OR_RETURN(DecoderOutput out, decoder.Forward(batch, &cache));
    ASSIGN_OR_RETURN(Tensor logits, backend->Download(out.logits));
    if (options.return_prompt_logits) {
      std::memcpy(result.prompt_logits.data<float>() + begin * vocab, logits.data<float>(),
                  logits.nbytes());
    }
    if (end == n) {
      std::memcpy(last_logits.data(), logits.data<float>() + (logits.dim(0) - 1) * vocab,
                  vocab * sizeof(float));
    }
  }

  const auto decode_start = std::chrono::steady_clock::now();
  using Ms = std::chrono::duration<double, std::milli>;
  result.prefill_ms = Ms(decode_start - prefill_start).count();

  // Decode: the argmax of the latest logits is the next token; feed it back.
  std::vector<float> steps;
  int32_t position = prompt.next_position;
  for (int step = 0; step < options.max_new_tokens; ++step) {
    const int32_t next = static_cast<int32_t>(
        std::max_element(last_logits.begin(), last_logits.end()) - last_logits.begin());
    result.ids.push_back(next);
    steps.insert(steps.end(), last_logits.begin(), last_logits.end());
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) !=
            options.stop_ids.end() ||
        step + 1 == options.max_new_tokens) {
      break;
    }
    SequenceChunk seq;
    seq.token_ids = {next};
    seq.positions = {position++};
    seq.num_cached = static_cast<int32_t>(n + step);
    seq.block_table = block_table;
    DecoderBatch batch;
    batch.sequences.push_back(std::move(seq));
    ASSIGN_OR_RETURN(DecoderOutput out, decoder.Forward(batch, &cache));
    ASSIGN_OR_RETURN(Tensor logits, backend->Download(out.logits));
    std::memcpy(last_logits.data(), logits.data<float>(), vocab * sizeof(float));
  }
  result.decode_ms = Ms(std::chrono::steady_clock::now() - decode_start).count();
  result.step_logits = Tensor::FromF32({static_cast<int64_t>(result.ids.size()), vocab}, steps);
  return result;
}

}  // namespace glm4v
