// The ModelRunner of rank 0 of a tensor-parallel group: each Execute broadcasts the step (the
// whole DecoderBatch, see step_message.h) to the follower ranks, runs rank 0's decoder shard in
// lockstep with them, and returns the full logits (all-gathered inside the decoder) for the
// engine's sampler. Rank 0's block manager decides block ids for every rank.
//
// Failure: a rank that dies or stalls makes the next step fail within the communicator timeout;
// from then on the group is broken and every Execute returns UNAVAILABLE at once (the engine
// fails the affected requests with it and reports unhealthy). While idle, a heartbeat keeps the
// followers (blocked waiting for the next message) inside their timeout and notices dead ranks.
//
// Steps run eagerly, never as captured graphs (worker/decoder_model_runner.h): the sharded
// decoder's collectives go through host memory (socket communicator, host-staged all-reduces,
// the logits all-gather assembled on the host), which a CUDA graph cannot record. NCCL
// collectives on the backend's stream could be captured later, once the logits gather stays
// on the device.
#pragma once

#include <functional>
#include <vector>

#include <memory>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/kv_cache.h"
#include "worker/model_runner.h"
#include "worker/tp/rank_resources.h"
#include "worker/tp/rank_stats.h"
#include "worker/tp/step_message.h"

namespace glm4v::worker::tp {

class TensorParallelModelRunner : public ModelRunner {
 public:
  // `rank` is rank 0 of its group (control may be null only for a group of one).
  // heartbeat_interval should be well below the communicator timeout (a quarter, say).
  // kv_dtype: every rank's KV cache dtype (unset: the backend's activation dtype); followers
  // are given the same (RunFollower).
  TensorParallelModelRunner(RankResources rank, absl::Duration heartbeat_interval,
                            std::optional<DType> kv_dtype = std::nullopt);
  ~TensorParallelModelRunner() override;  // Stop()

  const ModelConfig& config() const override { return rank_.decoder->config(); }
  // Rank 0's shard (every rank holds the same amount, give or take the vocabulary split).
  int64_t weight_bytes() const override { return rank_.decoder->weights().HeldBytes(); }
  absl::Status BindCallingThread() override {
    return rank_.decoder->backend()->BindCallingThread();
  }
  KvCacheShape KvBlockShape(int block_size) const override;
  int context_parallel_size() const override { return rank_.decoder->context_share().size; }
  size_t kv_element_size() const override { return DTypeSize(kv_dtype_); }
  int64_t kv_memory_capacity_bytes() const override;
  // Allocates rank 0's cache and has every follower allocate the same number of blocks.
  absl::Status AllocateKvCache(const KvCacheShape& shape) override;
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override;

  // Sends the followers "stop" (they return OK from RunFollower) and stops the heartbeat; later
  // calls fail with UNAVAILABLE. Idempotent.
  void Stop();
  // OK while the group is usable, else the UNAVAILABLE error that ended it.
  absl::Status health() const;
  int tp_size() const { return rank_.decoder->shard().size; }
  // Backend of the decoder's collectives: "nccl", "socket", or "none" (a group of one).
  absl::string_view collectives_backend() const {
    if (rank_.collectives != nullptr) return rank_.collectives->backend_name();
    return rank_.control != nullptr ? rank_.control->backend_name() : "none";
  }
  const Decoder& decoder() const { return *rank_.decoder; }

  // Called with every rank's stats (rank order) each time the group reports them: every
  // `stats_interval` from the heartbeat thread, between steps.
  using RankStatsListener = std::function<void(const std::vector<RankStats>&)>;
  void SetRankStatsListener(RankStatsListener listener, absl::Duration stats_interval);

 private:
  absl::Status Send(const StepMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the group broken with UNAVAILABLE carrying `cause`; returns that status.
  absl::Status Break(const absl::Status& cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HeartbeatLoop();

  const absl::Duration heartbeat_interval_;
  const DType kv_dtype_;
  mutable absl::Mutex mu_;  // serializes every use of the communicators
  RankResources rank_;
  std::unique_ptr<PagedKvCache> cache_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_sent_ ABSL_GUARDED_BY(mu_);
  RankStats stats_ ABSL_GUARDED_BY(mu_);  // rank 0's own
  RankStatsListener stats_listener_ ABSL_GUARDED_BY(mu_);
  absl::Duration stats_interval_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  absl::Time last_stats_ ABSL_GUARDED_BY(mu_);
  std::thread heartbeat_;
};

}  // namespace glm4v::worker::tp
