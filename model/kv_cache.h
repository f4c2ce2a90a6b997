// Paged KV cache storage shared by the decoder (which reads/writes it) and the worker's block
// manager (which hands out block ids). Layout per layer, for K and for V:
//   [num_blocks, block_size, num_kv_heads, head_dim]
// in the cache's dtype (f32 or bf16) on a backend's device (Backend::AllocateKvCache).
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
  // A host f32 cache, zero-filled.
  explicit PagedKvCache(const KvCacheShape& shape);
  // Over per-layer tensors [num_blocks, block_size, num_kv_heads, head_dim] of one dtype and
  // device (Backend::AllocateKvCache builds these).
  PagedKvCache(const KvCacheShape& shape, std::vector<Tensor> keys, std::vector<Tensor> values);

  const KvCacheShape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  // The layer's whole K / V tensor (any dtype and device).
  Tensor& key_tensor(int layer) { return keys_[layer]; }
  Tensor& value_tensor(int layer) { return values_[layer]; }
  const Tensor& key_tensor(int layer) const { return keys_[layer]; }
  const Tensor& value_tensor(int layer) const { return values_[layer]; }
  // Host f32 caches only: base of block `block` in layer `layer`: [block_size, num_kv_heads,
  // head_dim]. Calling them on a device or bf16 cache is a programming error: the process
  // aborts with a message (use key_tensor()/value_tensor() and the Backend ops instead).
  float* key_block(int layer, int block);
  float* value_block(int layer, int block);
  const float* key_block(int layer, int block) const;
  const float* value_block(int layer, int block) const;

 private:
  KvCacheShape shape_;
  DType dtype_ = DType::kF32;
  Device device_ = Device::kCpu;
  // Aborts unless this is a host f32 cache (key_block / value_block).
  void CheckHostF32(const char* accessor) const;

  std::vector<Tensor> keys_;    // per layer [num_blocks, block_size, kv_heads, head_dim]
  std::vector<Tensor> values_;
};

}  // namespace glm4v
