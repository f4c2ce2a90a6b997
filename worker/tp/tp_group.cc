#include "worker/tp/tp_group.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "model/decoder_weights.h"
#include "model/tensor_parallel.h"
#include "worker/tp/follower.h"

namespace glm4v::worker::tp {
namespace {

// FNV-1a over the figures every rank must agree on (same model, same group).
uint64_t Fingerprint(const ModelConfig& c, int tp_size, int dcp) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t v : {int64_t{tp_size}, int64_t{dcp}, int64_t{c.num_layers}, int64_t{c.hidden_size},
                    int64_t{c.num_attention_heads}, int64_t{c.multi_query_group_num},
                    int64_t{c.kv_channels}, int64_t{c.ffn_hidden_size},
                    int64_t{c.padded_vocab_size}}) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

absl::StatusOr<RankResources> JoinGroup(const TensorParallelOptions& options) {
  if (options.tp_size < 1 || options.tp_rank < 0 || options.tp_rank >= options.tp_size) {
    return absl::InvalidArgumentError(absl::StrCat("tp_rank ", options.tp_rank,
                                                   " outside a group of ", options.tp_size));
  }
  ASSIGN_OR_RETURN(Backend * backend, GetServingBackend(options.backend));
  CollectivesFactory make_collectives = options.make_collectives;
  if (!make_collectives) {
    ASSIGN_OR_RETURN(make_collectives, ResolveCollectives(options.collectives, backend,
                                                          options.tp_size, options.timeout));
  }
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(options.model_dir));
  const int dcp = options.decode_context_parallel > 0
                      ? options.decode_context_parallel
                      : DefaultDecodeContextParallel(config, options.tp_size);
  RETURN_IF_ERROR(CheckDecodeContextParallel(config, options.tp_size, dcp));
  // Weights first (the slow part, no communicator needed); connect_timeout absorbs the skew.
  ASSIGN_OR_RETURN(TensorParallelShard shard,
                   PlanShard(config, options.tp_rank, options.tp_size));
  ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(options.model_dir));
  ASSIGN_OR_RETURN(DecoderWeights weights,
                   LoadDecoderWeights(checkpoint, config, backend, shard, options.weights));
  LOG_INFO("decoder shard loaded")
      .With("tp_rank", options.tp_rank)
      .With("weight_bytes", weights.HeldBytes())
      .With("weight_dtype", weights.layers.empty() ? std::string("f32")
                                                   : weights.layers[0].qkv_weight.StorageName());

  RankResources rank;
  TensorParallelContext tp{options.tp_rank, options.tp_size, nullptr, dcp};
  if (options.tp_size > 1) {
    comm::SocketCommunicatorOptions so;
    so.rank = options.tp_rank;
    so.world_size = options.tp_size;
    so.rendezvous = options.rendezvous;
    so.timeout = options.timeout;
    so.connect_timeout = options.connect_timeout;
    if (options.tp_rank == 0 && options.listener != nullptr) {
      ASSIGN_OR_RETURN(rank.control,
                       comm::SocketCommunicator::Create(so, std::move(*options.listener)));
    } else {
      ASSIGN_OR_RETURN(rank.control, comm::SocketCommunicator::Create(so));
    }
    // Catch ranks started on a different model or group size before the first step.
    const uint64_t mine = Fingerprint(config, options.tp_size, dcp);
    std::vector<uint64_t> all(options.tp_size);
    RETURN_IF_ERROR(rank.control->AllGather(&mine, all.data(), sizeof(mine)));
    for (int r = 0; r < options.tp_size; ++r) {
      if (all[r] != mine) {
        return absl::FailedPreconditionError(absl::StrCat(
            "tensor-parallel rank ", r,
            " runs a different model, group size or decode context parallel size than rank ",
            options.tp_rank));
      }
    }
    if (make_collectives) {
      ASSIGN_OR_RETURN(rank.collectives, make_collectives(*rank.control));
    }
    tp.comm = rank.collectives != nullptr ? rank.collectives.get() : rank.control.get();
  } else if (make_collectives) {
    // A group of one with explicit collectives (e.g. NCCL on one GPU): bootstrap over a
    // one-rank socket communicator, which is not needed afterwards (no control messages).
    ASSIGN_OR_RETURN(std::unique_ptr<comm::SocketCommunicator> solo,
                     comm::SocketCommunicator::Create(comm::SocketCommunicatorOptions{}));
    ASSIGN_OR_RETURN(rank.collectives, make_collectives(*solo));
    tp.comm = rank.collectives.get();
  }
  ASSIGN_OR_RETURN(rank.decoder, Decoder::Create(config, std::move(weights), backend, tp));
  return rank;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TensorParallelModelRunner>> StartTensorParallelGroup(
    const TensorParallelOptions& options) {
  if (options.tp_rank != 0) {
    return absl::InvalidArgumentError("StartTensorParallelGroup is for rank 0; use RunFollowerRank");
  }
  ASSIGN_OR_RETURN(RankResources rank, JoinGroup(options));
  const absl::Duration beat = options.heartbeat_interval > absl::ZeroDuration()
                                  ? options.heartbeat_interval
                                  : options.timeout / 4;
  return std::make_unique<TensorParallelModelRunner>(std::move(rank), beat,
                                                     options.kv_cache_dtype);
}

absl::Status RunFollowerRank(const TensorParallelOptions& options) {
  if (options.tp_rank == 0) {
    return absl::InvalidArgumentError("rank 0 runs StartTensorParallelGroup, not a follower");
  }
  ASSIGN_OR_RETURN(RankResources rank, JoinGroup(options));
  return RunFollower(*rank.decoder, *rank.control, options.kv_cache_dtype);
}

}  // namespace glm4v::worker::tp
