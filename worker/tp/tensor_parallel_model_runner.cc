#include "worker/tp/tensor_parallel_model_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/process_memory.h"
#include "common/status_macros.h"

namespace glm4v::worker::tp {

TensorParallelModelRunner::TensorParallelModelRunner(RankResources rank,
                                                     absl::Duration heartbeat_interval,
                                                     std::optional<DType> kv_dtype)
    : heartbeat_interval_(heartbeat_interval),
      kv_dtype_(kv_dtype.value_or(rank.decoder->backend()->activation_dtype())),
      rank_(std::move(rank)) {
  absl::MutexLock lock(&mu_);
  last_sent_ = absl::Now();
  last_stats_ = last_sent_;
  stats_.weight_bytes = static_cast<double>(rank_.decoder->weights().HeldBytes());
  if (rank_.control != nullptr) heartbeat_ = std::thread([this] { HeartbeatLoop(); });
}

void TensorParallelModelRunner::SetRankStatsListener(RankStatsListener listener,
                                                     absl::Duration stats_interval) {
  absl::MutexLock lock(&mu_);
  stats_listener_ = std::move(listener);
  stats_interval_ = stats_interval;
}

TensorParallelModelRunner::~TensorParallelModelRunner() { Stop(); }

KvCacheShape TensorParallelModelRunner::KvBlockShape(int block_size) const {
  return rank_.decoder->CacheShape(/*num_blocks=*/0, block_size);
}

int64_t TensorParallelModelRunner::kv_memory_capacity_bytes() const {
  // Rank 0's free memory; every rank holds the same number of blocks of the same size (ranks
  // are alike, and the budget is a fraction of it).
  return rank_.decoder->backend()->free_memory_bytes();
}

absl::Status TensorParallelModelRunner::Send(const StepMessage& message) {
  if (rank_.control == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string bytes, EncodeStepMessage(message));
  RETURN_IF_ERROR(comm::BroadcastString(*rank_.control, &bytes, /*root=*/0));
  last_sent_ = absl::Now();
  return absl::OkStatus();
}

absl::Status TensorParallelModelRunner::Break(const absl::Status& cause) {
  if (broken_.ok()) {
    broken_ = absl::UnavailableError(
        absl::StrCat("tensor-parallel group of ", tp_size(), " failed: ", cause.ToString()));
  }
  return broken_;
}

absl::Status TensorParallelModelRunner::AllocateKvCache(const KvCacheShape& shape) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  if (cache_ != nullptr) return absl::FailedPreconditionError("KV cache already allocated");
  const KvCacheShape want = rank_.decoder->CacheShape(shape.num_blocks, shape.block_size);
  if (shape.num_layers != want.num_layers || shape.num_kv_heads != want.num_kv_heads ||
      shape.head_dim != want.head_dim || shape.num_blocks <= 0 || shape.block_size <= 0) {
    return absl::InvalidArgumentError("KV cache shape does not match this rank's shard");
  }
  StepMessage message;
  message.kind = StepMessage::Kind::kAllocateKvCache;
  message.num_blocks = shape.num_blocks;
  message.block_size = shape.block_size;
  if (absl::Status s = Send(message); !s.ok()) return Break(s);
  absl::StatusOr<PagedKvCache> cache =
      rank_.decoder->backend()->AllocateKvCache(want, kv_dtype_);
  if (!cache.ok()) return Break(cache.status());  // the followers allocated theirs
  cache_ = std::make_unique<PagedKvCache>(*std::move(cache));
  stats_.kv_cache_bytes = static_cast<double>(KvCacheBytes(*cache_));
  return absl::OkStatus();
}

absl::StatusOr<DecoderOutput> TensorParallelModelRunner::Execute(const DecoderBatch& batch) {
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  if (cache_ == nullptr) return absl::FailedPreconditionError("KV cache not allocated");
  // Reject bad batches here, before the followers see them, so the group stays in step.
  RETURN_IF_ERROR(rank_.decoder->Validate(batch, *cache_));
  StepMessage message;
  message.kind = StepMessage::Kind::kStep;
  message.batch = batch;  // copies host metadata; embeddings share storage
  if (absl::Status s = Send(message); !s.ok()) return Break(s);
  const absl::Time start = absl::Now();
  absl::StatusOr<DecoderOutput> output = rank_.decoder->Forward(batch, cache_.get());
  // After the broadcast any failure leaves the ranks out of step: the group is done.
  if (!output.ok()) return Break(output.status());
  stats_.steps += 1;
  stats_.step_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  if (output->logits.defined() && output->logits.device() != Device::kCpu) {
    absl::StatusOr<Tensor> host = rank_.decoder->backend()->Download(output->logits);
    if (!host.ok()) return Break(host.status());
    output->logits = *std::move(host);  // the sampler reads host memory
  }
  return output;
}

void TensorParallelModelRunner::HeartbeatLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopped_ && broken_.ok()) {
    mu_.AwaitWithTimeout(absl::Condition(&stopped_), heartbeat_interval_);
    if (stopped_ || !broken_.ok()) break;
    if (stats_listener_ && absl::Now() - last_stats_ >= stats_interval_) {
      StepMessage report;
      report.kind = StepMessage::Kind::kReportStats;
      if (absl::Status s = Send(report); !s.ok()) {
        Break(s).IgnoreError();
        break;
      }
      last_stats_ = absl::Now();
      stats_.resident_bytes = static_cast<double>(ReadResidentKiB().value_or(0) * 1024);
      absl::StatusOr<std::vector<RankStats>> all = GatherRankStats(*rank_.control, stats_);
      if (!all.ok()) {
        Break(all.status()).IgnoreError();
        break;
      }
      stats_listener_(*all);
      continue;
    }
    if (absl::Now() - last_sent_ < heartbeat_interval_) continue;
    StepMessage beat;
    beat.kind = StepMessage::Kind::kHeartbeat;
    if (absl::Status s = Send(beat); !s.ok()) Break(s).IgnoreError();
  }
}

void TensorParallelModelRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      stopped_ = true;
      if (broken_.ok()) {
        StepMessage stop;
        stop.kind = StepMessage::Kind::kStop;
        // Best effort: a follower that is already gone fails on its own.
        Send(stop).IgnoreError();
        broken_ = absl::UnavailableError("tensor-parallel group stopped");
      }
    }
  }
  if (heartbeat_.joinable()) heartbeat_.join();
}

absl::Status TensorParallelModelRunner::health() const {
  absl::MutexLock lock(&mu_);
  return broken_;
}

}  // namespace glm4v::worker::tp
