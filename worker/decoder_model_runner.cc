#include "worker/decoder_model_runner.h"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "worker/decode_buckets.h"

namespace glm4v::worker {
namespace {

// Capture keys of different runners sharing one backend must not collide.
std::atomic<int64_t> next_runner_id{1};
constexpr int kBucketKeyBits = 24;  // buckets are < 2^24 rows

}  // namespace

absl::StatusOr<std::unique_ptr<DecoderModelRunner>> DecoderModelRunner::Load(
    const std::string& model_dir, Backend* backend, const DecoderRunnerOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder,
                   Decoder::Load(checkpoint, config, backend, {}, options.weights));
  return std::make_unique<DecoderModelRunner>(std::shared_ptr<const Decoder>(std::move(decoder)),
                                              options);
}

DecoderModelRunner::DecoderModelRunner(std::shared_ptr<const Decoder> decoder,
                                       const DecoderRunnerOptions& options)
    : decoder_(std::move(decoder)),
      kv_dtype_(options.kv_dtype.value_or(decoder_->backend()->activation_dtype())),
      decode_graphs_(options.decode_graphs.value_or(decoder_->backend()->captures_steps())),
      device_sampling_(options.device_sampling.value_or(decoder_->backend()->samples_on_device()) &&
                       decoder_->backend()->samples_on_device()),
      buckets_(DecodeBuckets(options.max_batch)),
      max_model_len_(options.max_model_len > 0 ? options.max_model_len
                                               : decoder_->config().seq_length),
      capture_key_base_(next_runner_id.fetch_add(1) << kBucketKeyBits) {
  // A sharded decoder's collectives (host staging, socket) cannot be captured, and its ranks
  // sample on the host from the gathered logits.
  if (decoder_->shard().size > 1) {
    decode_graphs_ = false;
    device_sampling_ = false;
  }
}

KvCacheShape DecoderModelRunner::KvBlockShape(int block_size) const {
  return decoder_->CacheShape(/*num_blocks=*/0, block_size);
}

int64_t DecoderModelRunner::kv_memory_capacity_bytes() const {
  return decoder_->backend()->free_memory_bytes();
}

absl::Status DecoderModelRunner::AllocateKvCache(const KvCacheShape& shape) {
  if (cache_ != nullptr) return absl::FailedPreconditionError("KV cache already allocated");
  Backend* backend = decoder_->backend();
  ASSIGN_OR_RETURN(PagedKvCache cache, backend->AllocateKvCache(shape, kv_dtype_));
  cache_ = std::make_unique<PagedKvCache>(std::move(cache));
  // Captured steps read the cache at fixed addresses: a new cache invalidates them.
  backend->ClearCaptured();
  bucket_buffers_.clear();
  max_blocks_per_seq_ = (max_model_len_ + shape.block_size - 1) / shape.block_size;
  return absl::OkStatus();
}

bool DecoderModelRunner::IsCapturableDecode(const DecoderBatch& batch,
                                            const DecoderPlan& plan) const {
  const int n = static_cast<int>(batch.sequences.size());
  if (!decode_graphs_ || n == 0 || DecodeBucketFor(n, buckets_) < 0) return false;
  if (!plan.image_rows.empty() || cache_->shape().num_blocks < 1) return false;
  for (const SequenceChunk& seq : batch.sequences) {
    if (seq.token_ids.size() != 1 || seq.logits != SequenceChunk::Logits::kLast ||
        seq.num_cached + 1 > max_model_len_) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<DecoderModelRunner::Bucket*> DecoderModelRunner::GetBucket(int size) {
  auto it = bucket_buffers_.find(size);
  if (it != bucket_buffers_.end()) return &it->second;
  Backend& be = *decoder_->backend();
  Bucket b;
  b.size = size;
  const int64_t rows = size;
  auto alloc = [&be](Shape shape, DType dtype) -> absl::StatusOr<Tensor> {
    Tensor t = be.Empty(dtype, shape);
    if (!t.defined()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate a decode bucket buffer ", ShapeToString(shape)));
    }
    return t;
  };
  ASSIGN_OR_RETURN(b.step.ids, alloc({rows}, DType::kI32));
  ASSIGN_OR_RETURN(b.step.positions, alloc({rows}, DType::kI32));
  ASSIGN_OR_RETURN(b.step.slots, alloc({rows}, DType::kI32));
  ASSIGN_OR_RETURN(b.step.logit_rows, alloc({rows}, DType::kI32));
  ASSIGN_OR_RETURN(b.step.attention.sequences, alloc({rows, 4}, DType::kI32));
  // Every real sequence's table (at most max_blocks_per_seq_ entries) plus one entry per
  // padding sequence.
  ASSIGN_OR_RETURN(b.step.attention.block_tables,
                   alloc({rows * max_blocks_per_seq_ + rows}, DType::kI32));
  // Fixed bounds: the graph recorded for this bucket serves every later step.
  b.step.attention.max_num_queries = 1;
  b.step.attention.max_kv_len = max_model_len_;
  ASSIGN_OR_RETURN(b.logits, alloc({rows, decoder_->config().padded_vocab_size}, DType::kF32));
  return &bucket_buffers_.emplace(size, std::move(b)).first->second;
}

absl::StatusOr<DecoderModelRunner::Bucket*> DecoderModelRunner::RunBucket(DecoderPlan* plan_ptr) {
  DecoderPlan& plan = *plan_ptr;
  Backend& be = *decoder_->backend();
  const int n = static_cast<int>(plan.num_tokens());
  const int size = DecodeBucketFor(n, buckets_);
  ASSIGN_OR_RETURN(Bucket * bucket, GetBucket(size));

  // Pad to the bucket: rows that write no KV (slot -1) and one-token sequences over block 0.
  plan.ids.resize(size, 0);
  plan.positions.resize(size, 0);
  plan.slots.resize(size, -1);
  plan.logit_rows.resize(size);
  std::iota(plan.logit_rows.begin(), plan.logit_rows.end(), 0);
  PagedBatchHost& attention = plan.attention;
  for (int row = n; row < size; ++row) {
    const int32_t padding[4] = {row, /*num_queries=*/1, /*kv_len=*/1,
                                static_cast<int32_t>(attention.block_tables.size())};
    attention.sequences.insert(attention.sequences.end(), padding, padding + 4);
    attention.block_tables.push_back(0);
  }

  DecoderStepInputs& step = bucket->step;
  RETURN_IF_ERROR(be.WriteIndices(plan.ids, &step.ids));
  RETURN_IF_ERROR(be.WriteIndices(plan.positions, &step.positions));
  RETURN_IF_ERROR(be.WriteIndices(plan.slots, &step.slots));
  RETURN_IF_ERROR(be.WriteIndices(plan.logit_rows, &step.logit_rows));
  RETURN_IF_ERROR(be.WriteIndices(attention.sequences, &step.attention.sequences));
  RETURN_IF_ERROR(be.WriteIndices(attention.block_tables, &step.attention.block_tables));
  PagedKvCache* cache = cache_.get();
  const Decoder& decoder = *decoder_;
  RETURN_IF_ERROR(be.RunCaptured(capture_key_base_ + size, [&decoder, &step, cache, bucket] {
    return decoder.Run(step, cache, &bucket->logits);
  }));
  ++captured_steps_;
  return bucket;
}

absl::StatusOr<DecoderOutput> DecoderModelRunner::ExecuteCaptured(DecoderPlan plan) {
  Backend& be = *decoder_->backend();
  const int n = static_cast<int>(plan.num_tokens());
  ASSIGN_OR_RETURN(Bucket * bucket, RunBucket(&plan));
  DecoderOutput output;
  ASSIGN_OR_RETURN(output.logits, be.Download(bucket->logits.SliceRows(0, n)));
  if (output.logits.raw_data() == bucket->logits.raw_data()) {
    output.logits = output.logits.Clone();  // a host view of the buffer the next step reuses
  }
  output.row_offsets = std::move(plan.row_offsets);
  return output;
}

absl::StatusOr<DecoderOutput> DecoderModelRunner::Execute(const DecoderBatch& batch) {
  if (cache_ == nullptr) return absl::FailedPreconditionError("KV cache not allocated");
  ASSIGN_OR_RETURN(DecoderPlan plan, decoder_->Plan(batch, *cache_));
  if (IsCapturableDecode(batch, plan)) return ExecuteCaptured(std::move(plan));
  ASSIGN_OR_RETURN(DecoderOutput output, decoder_->RunPlan(std::move(plan), cache_.get()));
  if (output.logits.defined() && output.logits.device() != Device::kCpu) {
    // The sampler reads host memory.
    ASSIGN_OR_RETURN(output.logits, decoder_->backend()->Download(output.logits));
  }
  return output;
}

absl::StatusOr<SampledRows> DecoderModelRunner::ExecuteAndSample(
    const DecoderBatch& batch, const SamplingBatchHost& sampling) {
  if (!device_sampling_) {
    return absl::FailedPreconditionError("device sampling is off for this runner");
  }
  if (cache_ == nullptr) return absl::FailedPreconditionError("KV cache not allocated");
  ASSIGN_OR_RETURN(DecoderPlan plan, decoder_->Plan(batch, *cache_));
  Tensor logits;
  if (IsCapturableDecode(batch, plan)) {
    const int n = static_cast<int>(plan.num_tokens());
    ASSIGN_OR_RETURN(Bucket * bucket, RunBucket(&plan));
    logits = bucket->logits.SliceRows(0, n);
  } else {
    ASSIGN_OR_RETURN(DecoderOutput output, decoder_->RunPlan(std::move(plan), cache_.get()));
    logits = std::move(output.logits);
  }
  if (!logits.defined()) return SampledRows{};
  return decoder_->backend()->SampleRows(&logits, sampling);
}

}  // namespace glm4v::worker

