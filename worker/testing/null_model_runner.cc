#include "worker/testing/null_model_runner.h"

#include <cstring>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <utility>

#include "absl/time/clock.h"

namespace glm4v::worker::testing {

NullModelRunner::NullModelRunner(ModelConfig config, std::vector<std::vector<float>> rows)
    : config_(std::move(config)),
      rows_(std::move(rows)),
      output_(std::make_shared<std::vector<float>>()) {}

KvCacheShape NullModelRunner::KvBlockShape(int block_size) const {
  KvCacheShape shape;
  shape.num_layers = config_.num_layers;
  shape.block_size = block_size;
  shape.num_kv_heads = config_.multi_query_group_num;
  shape.head_dim = config_.kv_channels;
  return shape;
}

void NullModelRunner::SleepDeviceTime() {
  if (device_time_ <= absl::ZeroDuration()) return;
  const absl::Time start = absl::Now();
  absl::SleepFor(device_time_);
  slept_seconds_.store(slept_seconds_.load() + absl::ToDoubleSeconds(absl::Now() - start));
}

absl::Status NullModelRunner::BindCallingThread() {
#ifdef __linux__
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  return absl::OkStatus();
}

absl::StatusOr<DecoderOutput> NullModelRunner::Execute(const DecoderBatch& batch) {
  if (rows_.empty()) return absl::FailedPreconditionError("null model runner has no rows");
  SleepDeviceTime();
  const int64_t vocab = config_.padded_vocab_size;
  DecoderOutput out;
  out.row_offsets.push_back(0);
  for (const SequenceChunk& chunk : batch.sequences) {
    int rows = 0;
    if (chunk.logits == SequenceChunk::Logits::kLast) rows = chunk.token_ids.empty() ? 0 : 1;
    if (chunk.logits == SequenceChunk::Logits::kAll) rows = static_cast<int>(chunk.token_ids.size());
    out.row_offsets.push_back(out.row_offsets.back() + rows);
  }
  const int64_t total = out.row_offsets.back();
  if (static_cast<int64_t>(output_->size()) < total * vocab) output_->resize(total * vocab);
  for (int64_t r = 0; r < total; ++r) {
    const std::vector<float>& source = rows_[(step_ + r) % rows_.size()];
    std::memcpy(output_->data() + r * vocab, source.data(), vocab * sizeof(float));
  }
  ++step_;
  out.logits = Tensor::Borrow(DType::kF32, {total, vocab}, output_->data(), output_);
  return out;
}

absl::StatusOr<SampledRows> NullModelRunner::ExecuteAndSample(const DecoderBatch& batch,
                                                              const SamplingBatchHost& sampling) {
  if (!sample_on_device_) return ModelRunner::ExecuteAndSample(batch, sampling);
  SleepDeviceTime();
  // Ids spread over the vocabulary (never a stop id: the bench clears them), logprobs 0.
  SampledRows out;
  const int rows = sampling.num_rows();
  out.top_count = sampling.max_top_logprobs();
  for (int r = 0; r < rows; ++r) {
    out.token_ids.push_back(static_cast<int32_t>((step_ * 7919 + r * 104729) %
                                                 config_.padded_vocab_size));
  }
  if (sampling.any_logprobs()) {
    out.logprobs.assign(rows, 0.0f);
    out.top_ids.assign(static_cast<size_t>(rows) * out.top_count, 0);
    out.top_logprobs.assign(static_cast<size_t>(rows) * out.top_count, 0.0f);
  }
  ++step_;
  return out;
}

}  // namespace glm4v::worker::testing
