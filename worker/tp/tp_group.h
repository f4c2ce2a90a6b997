// Entry points of a tensor-parallel decoder group, one process (or thread) per rank:
//
//   rank 0:   ASSIGN_OR_RETURN(auto runner, StartTensorParallelGroup(options));
//             auto engine = Engine::Create(engine_config, std::move(runner));   // as usual
//   rank > 0: return RunFollowerRank(options);   // blocks until rank 0 stops or a rank fails
//
// Every rank loads only its shard of the decoder (the vision tower is not part of this: it runs
// replicated in the vision service), then all ranks meet at `rendezvous`. See README.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/socket_communicator.h"
#include "model/weight_options.h"
#include "worker/tp/collectives.h"
#include "worker/tp/tensor_parallel_model_runner.h"

namespace glm4v::worker::tp {

struct TensorParallelOptions {
  std::string model_dir;     // config.json + safetensors shards
  std::string backend = "cpu";
  int tp_rank = 0;
  int tp_size = 1;
  // Decode context parallelism (model/context_parallel_attention.h): 0 = the default
  // (DefaultDecodeContextParallel: tp_size / kv_groups when the ranks outnumber the groups).
  // The same value on every rank.
  int decode_context_parallel = 0;
  // "host:port" where rank 0's communicator listens; the same string on every rank.
  std::string rendezvous;
  // A rank that dies or stalls fails the group's next step (or the idle heartbeat) within this.
  absl::Duration timeout = absl::Seconds(30);
  // Bound on all ranks meeting after loading their weights (covers load-time skew).
  absl::Duration connect_timeout = absl::Seconds(300);
  // Rank 0's idle heartbeat; zero = timeout / 4.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // Who does the decoder's all-reduces/all-gathers: "auto" (NCCL on the cuda backend when
  // tp_size > 1, else the socket control channel), "socket" or "nccl" (collectives.h). "nccl"
  // with tp_size == 1 still builds a one-rank NCCL communicator and routes the decoder's
  // collectives through it (exercises the NCCL path on a one-GPU machine).
  std::string collectives = "auto";
  // Overrides `collectives` when set: builds the collectives communicator over the control
  // channel (the socket communicator; a one-rank one when tp_size == 1).
  CollectivesFactory make_collectives;
  // Rank 0 only, optional: an already bound listener (tests bind port 0) instead of binding
  // `rendezvous`.
  std::shared_ptr<comm::SocketListener> listener;
  // KV cache dtype of every rank (f32 or bf16); unset = the backend's activation dtype. Pass
  // the same value on every rank.
  std::optional<DType> kv_cache_dtype;
  // Weight matrix storage (unset: the backend's activation dtype).
  WeightLoadOptions weights;
};

// Rank 0 (options.tp_rank must be 0): loads its shard, waits for the other ranks, and returns
// the ModelRunner the engine drives. Destroying it (or Stop()) ends the followers.
absl::StatusOr<std::unique_ptr<TensorParallelModelRunner>> StartTensorParallelGroup(
    const TensorParallelOptions& options);

// Ranks > 0: loads the shard, joins the group, and serves rank 0's steps. Returns OK after
// rank 0 stops the group, else the failure (UNAVAILABLE/DEADLINE_EXCEEDED when a rank is gone).
absl::Status RunFollowerRank(const TensorParallelOptions& options);

}  // namespace glm4v::worker::tp
