#include "model/kv_cache.h"

namespace glm4v {

PagedKvCache::PagedKvCache(const KvCacheShape& shape) : shape_(shape) {
  const Shape layer_shape = {shape.num_blocks, shape.block_size, shape.num_kv_heads,
                             shape.head_dim};
  keys_.reserve(shape.num_layers);
  values_.reserve(shape.num_layers);
  for (int l = 0; l < shape.num_layers; ++l) {
    keys_.push_back(Tensor::Zeros(DType::kF32, layer_shape));
    values_.push_back(Tensor::Zeros(DType::kF32, layer_shape));
  }
}

float* PagedKvCache::key_block(int layer, int block) {
  return keys_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
float* PagedKvCache::value_block(int layer, int block) {
  return values_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
const float* PagedKvCache::key_block(int layer, int block) const {
  return keys_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
const float* PagedKvCache::value_block(int layer, int block) const {
  return values_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}

}  // namespace glm4v
