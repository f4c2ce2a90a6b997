// Paged KV cache storage shared by the decoder (which reads/writes it) and the worker's block
// manager (which hands out block ids). Layout per layer, for K and for V:
//   [num_blocks, block_size, num_kv_heads, head_dim]  (f32 on the CPU backend)
// A sequence owns a list of block ids (its block table); token t of the sequence lives in block
// table[t / block_size], slot t % block_size. num_kv_heads is the number of KV groups held by
// this rank (all of them without tensor parallelism).
#pragma once

#include <cstdint>
#include <vector>

#include "common/tensor.h"

namespace glm4v {

struct KvCacheShape {
  int num_layers = 0;
  int num_blocks = 0;
  int block_size = 16;   // tokens per block
  int num_kv_heads = 0;
  int head_dim = 0;

  int64_t floats_per_block_per_layer() const {
    return static_cast<int64_t>(block_size) * num_kv_heads * head_dim;
  }
  // Bytes of K+V for one block across all layers, for a given element size.
  int64_t bytes_per_block(size_t elem_size) const {
    return 2 * num_layers * floats_per_block_per_layer() * static_cast<int64_t>(elem_size);
  }
};

class PagedKvCache {
 public:
  PagedKvCache() = default;
  explicit PagedKvCache(const KvCacheShape& shape);  // allocates, zero-filled

  const KvCacheShape& shape() const { return shape_; }
  // Base of block `block` in layer `layer`: [block_size, num_kv_heads, head_dim].
  float* key_block(int layer, int block);
  float* value_block(int layer, int block);
  const float* key_block(int layer, int block) const;
  const float* value_block(int layer, int block) const;

 private:
  KvCacheShape shape_;
  std::vector<Tensor> keys_;    // per layer [num_blocks, block_size, kv_heads, head_dim]
  std::vector<Tensor> values_;
};

}  // namespace glm4v
