// GLM "original" rotary embedding and paged KV-cache writes on device pointers.
//
// RoPE: in every head the first rotary_dim dims rotate as interleaved pairs (x[2j], x[2j+1]) by
// angle positions[row] * base^(-2j / rotary_dim); the rest pass through. Angles are computed in
// double and rounded once (long contexts keep full precision).
//
// KV cache layout per layer (K and V alike): [num_blocks, block_size, num_kv_heads, head_dim],
// slot = block * block_size + offset; a negative slot skips the row (padding rows of a CUDA-graph
// batch bucket).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace glm4v::cuda {

struct RopeParams {
  int num_heads = 0;
  int head_dim = 0;
  int rotary_dim = 0;
  double base = 10000.0;
};

// x: rows of num_heads * head_dim values starting every `row_stride` elements; in place.
template <typename T>
cudaError_t ApplyRope(T* x, int64_t row_stride, int64_t rows, const int32_t* positions,
                      const RopeParams& p, cudaStream_t stream);

// cache[slots[i]] = k/v row i; k, v rows of `width` = num_kv_heads * head_dim elements every
// `row_stride` elements. The cache element type may differ from the input: instantiated for
// (T, C) = (f32, f32), (f32, bf16), (bf16, bf16), (bf16, f32).
template <typename T, typename C>
cudaError_t WriteKvCache(const T* k, const T* v, int64_t row_stride, int64_t rows, int64_t width,
                         const int32_t* slots, C* k_cache, C* v_cache, cudaStream_t stream);

// The decoder's fused step after the QKV GEMM: qkv rows [q (num_heads) | k (kv) | v (kv)] *
// head_dim. Rotates q in place, rotates k and stores it (and v) into the cache slots.
template <typename T>
cudaError_t RopeAndWriteKv(T* qkv, int64_t rows, const int32_t* positions, const int32_t* slots,
                           const RopeParams& p, int num_kv_heads, T* k_cache, T* v_cache,
                           cudaStream_t stream);

}  // namespace glm4v::cuda
