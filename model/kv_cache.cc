#include "model/kv_cache.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

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

PagedKvCache::PagedKvCache(const KvCacheShape& shape, std::vector<Tensor> keys,
                           std::vector<Tensor> values)
    : shape_(shape), keys_(std::move(keys)), values_(std::move(values)) {
  if (!keys_.empty()) {
    dtype_ = keys_[0].dtype();
    device_ = keys_[0].device();
  }
}

void PagedKvCache::CheckHostF32(const char* accessor) const {
  if (dtype_ == DType::kF32 && device_ == Device::kCpu) return;
  const std::string where = keys_.empty() ? "undefined" : keys_[0].DebugString();
  std::fprintf(stderr,
               "glm4v::PagedKvCache::%s: only for host f32 caches, this one is %s per layer "
               "(use key_tensor()/value_tensor())\n",
               accessor, where.c_str());
  std::abort();
}

float* PagedKvCache::key_block(int layer, int block) {
  CheckHostF32("key_block");
  return keys_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
float* PagedKvCache::value_block(int layer, int block) {
  CheckHostF32("value_block");
  return values_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
const float* PagedKvCache::key_block(int layer, int block) const {
  CheckHostF32("key_block");
  return keys_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}
const float* PagedKvCache::value_block(int layer, int block) const {
  CheckHostF32("value_block");
  return values_[layer].data<float>() + block * shape_.floats_per_block_per_layer();
}

}  // namespace glm4v
