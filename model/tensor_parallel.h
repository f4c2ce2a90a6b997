// Tensor parallelism (Megatron style) for the GLM-4 decoder: which slice of the model one rank
// holds, and the communicator its sharded forward pass reduces over.
//
//   qkv            column-parallel by query heads; KV groups split when tp <= groups, else
//                  replicated so that each rank holds the one group its query heads use
//   dense          row-parallel (input columns = the rank's heads) + all-reduce
//   dense_h_to_4h  column-parallel: the rank's slice of the gate half AND the same slice of
//                  the up half, so silu(gate) * up stays local
//   dense_4h_to_h  row-parallel + all-reduce
//   embedding      vocab-parallel (rows [v0, v0 + vocab/tp)) + all-reduce
//   output_layer   vocab-parallel + all-gather of the logits
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/comm/communicator.h"

namespace glm4v {

// Rank `rank` of a group of `size`; `comm` (size ranks, same order) carries the decoder's
// all-reduces and all-gathers. size == 1 needs no communicator and runs the unsharded model
// (given one, its identity collectives run anyway, e.g. to exercise NCCL on one GPU).
struct TensorParallelContext {
  int rank = 0;
  int size = 1;
  comm::Communicator* comm = nullptr;
  // Decode context parallelism: ranks that hold the same KV group (size > KV groups) split its
  // tokens `decode_context_parallel` ways (model/context_parallel_attention.h). 1: each keeps
  // all of them (replicated KV).
  int decode_context_parallel = 1;
};

// The part of the decoder one rank holds (ranges in units of heads / rows).
struct TensorParallelShard {
  int rank = 0;
  int size = 1;
  int num_heads = 0;     // local query heads: [first_head, first_head + num_heads)
  int first_head = 0;
  int num_kv_heads = 0;  // local KV groups: [first_kv_head, first_kv_head + num_kv_heads)
  int first_kv_head = 0;
  int64_t ffn = 0;       // local FFN columns of each half: [first_ffn, first_ffn + ffn)
  int64_t first_ffn = 0;
  int64_t vocab = 0;     // local vocabulary rows: [first_vocab, first_vocab + vocab)
  int64_t first_vocab = 0;
};

// Checks that `config` can be split `size` ways and returns rank `rank`'s shard:
// heads % size == 0, groups % size == 0 or size % groups == 0, ffn % size == 0 and
// padded_vocab % size == 0 (INVALID_ARGUMENT naming the offending figure otherwise).
absl::StatusOr<TensorParallelShard> PlanShard(const ModelConfig& config, int rank, int size);

// Checks a decode context parallel size for a group of `size` ranks: 1 always; > 1 only when
// the ranks outnumber the KV groups and it divides the ranks per group (tp_size / kv_groups),
// so that the ranks sharing one KV group split its tokens evenly.
absl::Status CheckDecodeContextParallel(const ModelConfig& config, int size, int dcp);
// tp_size / kv_groups when the ranks outnumber the KV groups (every replica of a group then
// holds a different share of its tokens), else 1.
int DefaultDecodeContextParallel(const ModelConfig& config, int size);

}  // namespace glm4v
