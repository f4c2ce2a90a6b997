// Plain softmax attention for what the tensor-core kernel (attention.h) does not cover: head
// dims it does not instantiate (the tiny golden checkpoint: decoder head_dim 16, vision
// head_dim 8; the odd shapes of the op tests) and f32 KV caches. One warp per (query row,
// head), online softmax over the keys in order, fp32 math: exact up to the storage dtypes,
// slow for long sequences; production GLM-4V shapes with a bf16 cache never come here.
//
// TQ is the dtype of q and out, TKV that of k and v (float or __nv_bfloat16 each). K/V are
// contiguous key rows, or a paged cache [num_blocks, block_size, num_kv_heads, head_dim] read
// through block tables, exactly as in AttnParams.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention.h"

namespace glm4v::cuda {

constexpr int kGenericAttentionMaxHeadDim = 256;

template <typename TQ, typename TKV>
struct GenericAttnParams {
  const TQ* q = nullptr;  // rows of num_heads * head_dim, q_stride apart
  int64_t q_stride = 0;
  // Contiguous: key row r at k + r * kv_stride. Paged: the layer's cache, kv_stride =
  // num_kv_heads * head_dim, slot = block_tables[kv_begin + j / block_size] * block_size +
  // j % block_size.
  const TKV* k = nullptr;
  const TKV* v = nullptr;
  int64_t kv_stride = 0;
  const int32_t* block_tables = nullptr;  // null: contiguous K/V
  int block_size = 0;
  TQ* out = nullptr;  // like q
  int64_t out_stride = 0;
  const AttnSequence* seqs = nullptr;  // device array; num_q = 0 rows are skipped
  int num_seqs = 0;
  int max_num_q = 0;  // grid bound, as AttnParams::max_num_q
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // 1..kGenericAttentionMaxHeadDim
  bool causal = false;  // same convention as attention.h: new queries are the last positions
  float scale = 1.f;
};

// cudaErrorInvalidValue on bad dims (head_dim out of range, num_heads % num_kv_heads != 0,
// paged without a positive block_size). Instantiated for every (TQ, TKV) of float and bf16.
template <typename TQ, typename TKV>
cudaError_t GenericAttention(const GenericAttnParams<TQ, TKV>& p, cudaStream_t stream);

}  // namespace glm4v::cuda
