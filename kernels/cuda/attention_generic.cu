#include "kernels/cuda/attention_generic.h"

#include <cmath>

#include "kernels/cuda/device_utils.cuh"

namespace glm4v::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kChunks = kGenericAttentionMaxHeadDim / kWarp;  // dims per lane

// grid (max_num_q, num_seqs, num_heads), one warp. Lane l owns dims l, l + 32, ...
template <typename TQ, typename TKV>
__global__ void GenericAttentionKernel(const GenericAttnParams<TQ, TKV> p) {
  const AttnSequence s = p.seqs[blockIdx.y];
  const int i = blockIdx.x;
  if (i >= s.num_q) return;  // also skips num_q = 0 sequences
  const int head = blockIdx.z;
  const int kv_head = head / (p.num_heads / p.num_kv_heads);
  const int lane = threadIdx.x;
  const int64_t row = static_cast<int64_t>(s.q_begin) + i;
  const TQ* q = p.q + row * p.q_stride + static_cast<int64_t>(head) * p.head_dim;
  float qv[kChunks], acc[kChunks];
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int d = lane + c * kWarp;
    qv[c] = d < p.head_dim ? ToFloat(q[d]) * p.scale : 0.f;
    acc[c] = 0.f;
  }
  // Causal: query i sees keys j <= i + (kv_len - num_q).
  const int num_keys = p.causal ? i + (s.kv_len - s.num_q) + 1 : s.kv_len;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < num_keys; ++j) {
    const int64_t key_row =
        p.block_tables == nullptr
            ? static_cast<int64_t>(s.kv_begin) + j
            : static_cast<int64_t>(p.block_tables[s.kv_begin + j / p.block_size]) * p.block_size +
                  j % p.block_size;
    const TKV* k = p.k + key_row * p.kv_stride + static_cast<int64_t>(kv_head) * p.head_dim;
    const TKV* v = p.v + key_row * p.kv_stride + static_cast<int64_t>(kv_head) * p.head_dim;
    float dot = 0.f;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int d = lane + c * kWarp;
      if (d < p.head_dim) dot += qv[c] * ToFloat(k[d]);
    }
    const float score = WarpSum(dot);  // xor butterfly: every lane gets the sum
    const float m_new = fmaxf(m, score);
    const float correction = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float weight = expf(score - m_new);
    l = l * correction + weight;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int d = lane + c * kWarp;
      acc[c] = acc[c] * correction + (d < p.head_dim ? weight * ToFloat(v[d]) : 0.f);
    }
    m = m_new;
  }
  const float inv_l = l > 0.f ? 1.f / l : 0.f;
  TQ* out = p.out + row * p.out_stride + static_cast<int64_t>(head) * p.head_dim;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int d = lane + c * kWarp;
    if (d < p.head_dim) out[d] = FromFloat<TQ>(acc[c] * inv_l);
  }
}

}  // namespace

template <typename TQ, typename TKV>
cudaError_t GenericAttention(const GenericAttnParams<TQ, TKV>& p, cudaStream_t stream) {
  if (p.head_dim <= 0 || p.head_dim > kGenericAttentionMaxHeadDim || p.num_heads <= 0 ||
      p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0 || p.num_seqs < 0 ||
      p.num_seqs > 65535 || p.num_heads > 65535 || p.max_num_q < 0 ||
      (p.block_tables != nullptr && p.block_size <= 0)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_seqs == 0 || p.max_num_q == 0) return cudaSuccess;
  const dim3 grid(p.max_num_q, p.num_seqs, p.num_heads);
  GenericAttentionKernel<TQ, TKV><<<grid, kWarp, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t GenericAttention<float, float>(const GenericAttnParams<float, float>&,
                                                    cudaStream_t);
template cudaError_t GenericAttention<float, bf16>(const GenericAttnParams<float, bf16>&,
                                                   cudaStream_t);
template cudaError_t GenericAttention<bf16, float>(const GenericAttnParams<bf16, float>&,
                                                   cudaStream_t);
template cudaError_t GenericAttention<bf16, bf16>(const GenericAttnParams<bf16, bf16>&,
                                                  cudaStream_t);

}  // namespace glm4v::cuda
