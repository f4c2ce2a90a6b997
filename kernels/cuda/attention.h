// Flash attention on bf16 tensor cores (mma.sync m16n8k16, fp32 softmax and accumulation), one
// kernel for the three uses:
//   - vision tower: non-causal, contiguous K/V, 6401 tokens, head_dim 112;
//   - decoder prefill: causal over a paged (or contiguous) KV cache, queries at the end;
//   - decode: one query per sequence over a long paged KV, split along the keys
//     (flash-decoding) with a second combine pass.
// GQA-aware: the rows of a CTA tile are (query token, query head of one KV group) pairs, so one
// K/V tile read from memory serves every query head of its group (all 16 of GLM's heads per
// group in decode).
//
// Causality: query i (0-based within its sequence) sees keys j <= i + (kv_len - num_q), i.e. the
// new queries are the last num_q positions of the sequence's keys.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace glm4v::cuda {

// Device-resident, one per sequence. A sequence with num_q = 0 is skipped (padding rows of a
// CUDA-graph batch bucket): its output rows are not written. The layout is that of
// kernels/ops.h's PagedBatch::sequences rows (i32 x 4), which are passed here as they are.
struct AttnSequence {
  int32_t q_begin = 0;   // first row of this sequence in q / out
  int32_t num_q = 0;     // query rows
  int32_t kv_len = 0;    // keys of the sequence (cached + new)
  int32_t kv_begin = 0;  // contiguous K/V: first key row; paged: offset into block_tables
};
static_assert(sizeof(AttnSequence) == 4 * sizeof(int32_t), "AttnSequence is i32[4]");

struct AttnParams {
  // q/out rows hold num_heads * head_dim values; k/v rows num_kv_heads * head_dim.
  const __nv_bfloat16* q = nullptr;
  int64_t q_stride = 0;  // elements between consecutive query rows
  // Contiguous: key row r at k + r * kv_stride. Paged: the layer's cache
  // [num_blocks, block_size, num_kv_heads, head_dim], with kv_stride = num_kv_heads * head_dim.
  const __nv_bfloat16* k = nullptr;
  const __nv_bfloat16* v = nullptr;
  int64_t kv_stride = 0;
  const int32_t* block_tables = nullptr;  // null: contiguous K/V
  int block_size = 0;
  __nv_bfloat16* out = nullptr;
  int64_t out_stride = 0;

  const AttnSequence* seqs = nullptr;  // device array
  int num_seqs = 0;
  // Bound on num_q over sequences: the grid covers this many query rows per sequence, so it
  // must hold for the contents the kernel reads (also on a CUDA graph replay).
  int max_num_q = 0;
  // Only sizes the split count (SuggestAttentionSplits): any value is correct, the split
  // boundaries come from each sequence's kv_len on the device.
  int max_kv_len = 0;
  int total_q_rows = 0;   // rows of q/out (bound of q_begin + num_q)

  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;       // 64, 80, 96, 112 or 128
  bool causal = false;
  float scale = 1.f;

  // Split-K: with num_splits > 1 partial results go to `workspace` (fp32, at least
  // AttentionWorkspaceBytes) and a combine kernel writes `out`.
  int num_splits = 1;
  float* workspace = nullptr;

  // Decode context parallelism (kernels/ops.h ContextShare): kv_len counts the sequence's
  // global tokens, the cache (paged) holds those with index % cp_size == cp_rank, and a query
  // sees the held keys at or before its own global position.
  int cp_size = 1;
  int cp_rank = 0;
  // Optional f32 [total_q_rows, num_heads]: each row's natural log-sum-exp of its scaled
  // scores (-inf where it sees no key).
  float* lse = nullptr;
};

bool AttentionHeadDimSupported(int head_dim);
size_t AttentionWorkspaceBytes(int num_splits, int total_q_rows, int num_heads, int head_dim);
// A split count that fills the GPU for decode-like shapes (few query rows, long KV) and 1 for
// prefill-like shapes; at most `max_splits`.
int SuggestAttentionSplits(const AttnParams& p, int num_sms, int max_splits = 32);

// Whether FlashAttention accepts p's head dim, heads, pointer alignment and strides: supported
// head_dim; q, k, v, out 16-byte aligned; strides multiples of 8 elements; num_heads %
// num_kv_heads == 0; 1 <= num_splits <= 64 with a workspace when > 1; block_size > 0 when
// paged.
bool FlashAttentionSupports(const AttnParams& p);
// cudaErrorInvalidValue unless FlashAttentionSupports(p).
cudaError_t FlashAttention(const AttnParams& p, cudaStream_t stream);

// seqs[b] = {b * len, len, len, b * len} for b < batch: `batch` equal-length sequences stacked
// in rows with contiguous K/V, written on the device (capture-safe, unlike a host upload).
cudaError_t MakeContiguousSequences(AttnSequence* seqs, int batch, int len, cudaStream_t stream);

}  // namespace glm4v::cuda
