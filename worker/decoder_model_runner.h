// ModelRunner over the GLM-4 Decoder (model/decoder.h) and a PagedKvCache on the decoder's
// backend: the single-rank runner, the same code on every Backend.
//
// Decode steps as captured graphs (options.decode_graphs; default: when the backend captures,
// i.e. CUDA graphs on the CUDA backend). A decode-only batch — every sequence one new token, no
// image rows, logits of that token — of n sequences runs as the smallest bucket B >= n of
// DecodeBuckets(max_batch), padded with rows that write nothing (slot -1) and one-token
// padding sequences attending to block 0. Each bucket owns fixed device buffers (token ids,
// positions, slots, logits rows, the PagedBatch and the logits [B, vocab]) allocated at its
// first use; a step writes its indices into them (Backend::WriteIndices), runs
// Decoder::Run through Backend::RunCaptured(bucket key) — recorded on the second use of a
// bucket, replayed afterwards — and downloads the first n logits rows. Prefill, mixed and
// image batches, larger batches and sequences longer than max_model_len run eagerly. On a
// backend that does not capture (CPU) the graph path is an ordinary eager step over the same
// buffers, which is how the CPU tests exercise it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/weight_options.h"
#include "worker/model_runner.h"

namespace glm4v::worker {

struct DecoderRunnerOptions {
  // KV cache dtype (f32 or bf16); unset = the backend's activation dtype.
  std::optional<DType> kv_dtype;
  // Captured decode steps; unset = backend->captures_steps().
  std::optional<bool> decode_graphs;
  // Largest decode batch that runs captured (the engine's max_num_seqs).
  int max_batch = 64;
  // Longest sequence (prompt + output) a captured step serves; sizes the per-bucket block
  // tables and bounds attention. 0 = the model's seq_length.
  int max_model_len = 0;
  // Weight storage (Load only).
  WeightLoadOptions weights;
  // Sample on the device (ExecuteAndSample); unset = backend->samples_on_device().
  std::optional<bool> device_sampling;
};

class DecoderModelRunner : public ModelRunner {
 public:
  // Loads config.json and the decoder weights of a checkpoint directory onto `backend`.
  static absl::StatusOr<std::unique_ptr<DecoderModelRunner>> Load(
      const std::string& model_dir, Backend* backend, const DecoderRunnerOptions& options = {});
  // Shares an already loaded decoder (several engines over one set of weights).
  explicit DecoderModelRunner(std::shared_ptr<const Decoder> decoder,
                              const DecoderRunnerOptions& options = {});

  const ModelConfig& config() const override { return decoder_->config(); }
  KvCacheShape KvBlockShape(int block_size) const override;
  size_t kv_element_size() const override { return DTypeSize(kv_dtype_); }
  int64_t kv_memory_capacity_bytes() const override;
  absl::Status AllocateKvCache(const KvCacheShape& shape) override;
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override;
  bool samples_on_device() const override { return device_sampling_; }
  int64_t weight_bytes() const override { return decoder_->weights().HeldBytes(); }
  absl::Status BindCallingThread() override { return decoder_->backend()->BindCallingThread(); }
  // The step as Execute (a decode bucket when it qualifies), then Backend::SampleRows on the
  // device logits: no logits row is copied to the host.
  absl::StatusOr<SampledRows> ExecuteAndSample(const DecoderBatch& batch,
                                               const SamplingBatchHost& sampling) override;

  DType kv_dtype() const { return kv_dtype_; }
  bool decode_graphs() const { return decode_graphs_; }
  // Steps run through a decode bucket so far (tests).
  int64_t captured_steps() const { return captured_steps_; }

 private:
  // Fixed device buffers of one decode bucket of `size` rows.
  struct Bucket {
    int size = 0;
    DecoderStepInputs step;  // ids, positions, slots, logit_rows [size]; attention buffers
    Tensor logits;           // f32 [size, vocab]
  };

  // Whether `batch` (planned as `plan`) can run as a decode bucket.
  bool IsCapturableDecode(const DecoderBatch& batch, const DecoderPlan& plan) const;
  absl::StatusOr<Bucket*> GetBucket(int size);
  // Pads `plan` to its bucket, writes the bucket's indices and runs the captured step; the
  // first plan->num_tokens() rows of the bucket's logits are the step's.
  absl::StatusOr<Bucket*> RunBucket(DecoderPlan* plan);
  absl::StatusOr<DecoderOutput> ExecuteCaptured(DecoderPlan plan);

  std::shared_ptr<const Decoder> decoder_;
  DType kv_dtype_;
  bool decode_graphs_;
  bool device_sampling_;
  std::vector<int> buckets_;  // DecodeBuckets(max_batch)
  int max_model_len_;
  int64_t capture_key_base_;  // distinguishes this runner's graphs on a shared backend
  std::unique_ptr<PagedKvCache> cache_;
  int max_blocks_per_seq_ = 0;  // ceil(max_model_len / block_size), set with the cache
  std::map<int, Bucket> bucket_buffers_;
  int64_t captured_steps_ = 0;
};

}  // namespace glm4v::worker
