// Decode context parallelism (DCP): attention when the tensor-parallel ranks outnumber the
// model's KV groups. GLM-4 has 2 KV groups, so at TP = 4 ranks 0-1 both hold group 0 and
// ranks 2-3 group 1; replicating the group's K/V on each would leave TP = 4 with no more
// context per GPU than TP = 2. With DCP the `dcp` ranks of a group (consecutive ranks) split its
// tokens instead, interleaved: token i lives only on the group's rank i % dcp (as vLLM's DCP
// lays it out), so each holds 1/dcp of the context.
//
// One layer's attention on rank r (DCP rank r % dcp), for its own query heads h:
//   1. all-gather the queries of the group's ranks: every rank gets all dcp * h heads of the
//      KV group for every token of the step;
//   2. attention of those heads over the rank's share of the keys, keeping each row's
//      log-sum-exp (PagedAttention with a ContextShare and `lse`);
//   3. all-gather the partial outputs and their log-sum-exps;
//   4. merge the dcp partials of its own heads: out = sum_p exp(lse_p - m) * out_p /
//      sum_p exp(lse_p - m), m = max_p lse_p (the partition of a softmax by its normalizers).
// The collectives run over the whole tensor-parallel group (the Communicator has no
// sub-groups) and each rank keeps its group's parts; the merge runs on the host in f32.
#pragma once

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/tensor.h"
#include "kernels/ops.h"
#include "model/kv_cache.h"
#include "worker/comm/communicator.h"

namespace glm4v {

struct ContextParallelAttentionArgs {
  Backend* backend = nullptr;
  comm::Communicator* comm = nullptr;  // the tensor-parallel group (all ranks call together)
  ContextShare share;                  // this rank's DCP size and rank
  int num_heads = 0;                   // this rank's query heads
  float scale = 1.0f;
};

// q / out: [rows, num_heads * head_dim] of this rank's heads; `batch` describes the step with
// batch.share == args.share and `cache` holds this rank's share of the tokens.
absl::Status ContextParallelAttention(const ContextParallelAttentionArgs& args, const Tensor& q,
                                      const PagedKvCache& cache, int layer,
                                      const PagedBatch& batch, Tensor* out);

// Step 4 alone (host f32): partial p is partials[p] [rows][heads * head_dim] with its
// log-sum-exps lse[p] [rows][heads]; out [rows][out_heads * head_dim] gets the merged heads
// [first_head, first_head + out_heads). A row no partial saw (all -inf) is 0.
void MergeAttentionPartials(absl::Span<const float* const> partials,
                            absl::Span<const float* const> lse, int64_t rows, int heads,
                            int head_dim, int first_head, int out_heads, float* out);

}  // namespace glm4v
