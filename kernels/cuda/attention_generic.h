// Plain f32 softmax attention for head dims the tensor-core kernel (attention.h) does not
// instantiate: the tiny golden checkpoint (decoder head_dim 16, vision head_dim 8) and the odd
// shapes of the op tests. One warp per (query row, head), online softmax over the keys in
// order: exact f32 math, slow for long sequences; production GLM-4V shapes never come here.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention.h"

namespace glm4v::cuda {

constexpr int kGenericAttentionMaxHeadDim = 256;

struct GenericAttnParams {
  const float* q = nullptr;  // rows of num_heads * head_dim, q_stride apart
  int64_t q_stride = 0;
  const float* k = nullptr;  // contiguous key rows of num_kv_heads * head_dim, kv_stride apart
  const float* v = nullptr;
  int64_t kv_stride = 0;
  float* out = nullptr;      // like q
  int64_t out_stride = 0;
  const AttnSequence* seqs = nullptr;  // device array; kv_begin is the first key row
  int num_seqs = 0;
  int max_num_q = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // 1..kGenericAttentionMaxHeadDim
  bool causal = false;  // same convention as attention.h: new queries are the last positions
  float scale = 1.f;
};

// cudaErrorInvalidValue on bad dims (head_dim out of range, num_heads % num_kv_heads != 0).
cudaError_t GenericAttention(const GenericAttnParams& p, cudaStream_t stream);

}  // namespace glm4v::cuda
