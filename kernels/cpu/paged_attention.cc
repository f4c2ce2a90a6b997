// KV-cache writes and causal attention over paged KV (prefill chunks and decode tokens alike).
#include <algorithm>
#include <vector>

#include "kernels/cpu/attention_core.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {
constexpr int64_t kQueryBlock = 16;

// Query heads [head_begin, head_begin + heads) of query rows [first_query, first_query +
// kQueryBlock) of one sequence.
struct WorkItem {
  int32_t sequence;
  int32_t head_begin;
  int64_t first_query;  // within the sequence's new tokens
};
}  // namespace

void WriteKvCache(const float* k, const float* v, const int32_t* slots, int64_t n, int layer,
                  PagedKvCache* cache) {
  const KvCacheShape& cs = cache->shape();
  const int64_t row = static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim;
  const DType dtype = cache->dtype();
  const size_t row_bytes = row * DTypeSize(dtype);
  auto* keys = static_cast<unsigned char*>(cache->key_tensor(layer).raw_data());
  auto* values = static_cast<unsigned char*>(cache->value_tensor(layer).raw_data());
  for (int64_t i = 0; i < n; ++i) {
    if (slots[i] < 0) continue;  // a padding row
    // Slot s is row s of the layer's [num_blocks * block_size, row] storage.
    ConvertFromF32(k + i * row, row, dtype, keys + slots[i] * row_bytes);
    ConvertFromF32(v + i * row, row, dtype, values + slots[i] * row_bytes);
  }
}

void PagedAttention(const float* q, const PagedKvCache& cache, int layer,
                    const int32_t* sequences, int64_t num_seqs, const int32_t* block_tables,
                    int num_heads, float scale, float* out) {
  const KvCacheShape& cs = cache.shape();
  const int head_dim = cs.head_dim;
  const int64_t kv_row = static_cast<int64_t>(cs.num_kv_heads) * head_dim;
  const int64_t q_row = static_cast<int64_t>(num_heads) * head_dim;
  const int heads_per_group = num_heads / cs.num_kv_heads;
  const DType dtype = cache.dtype();
  const size_t elem = DTypeSize(dtype);
  const auto* keys = static_cast<const unsigned char*>(cache.key_tensor(layer).raw_data());
  const auto* values = static_cast<const unsigned char*>(cache.value_tensor(layer).raw_data());
  // An f32 cache is read in place, one query head per work item. A bf16 cache is converted to
  // f32 per work item, which then covers a whole KV group so that the group's query heads share
  // one conversion. Either way every query's arithmetic is the same.
  const bool in_place = dtype == DType::kF32;
  const int heads_per_item = in_place ? 1 : heads_per_group;

  std::vector<WorkItem> items;
  int64_t total_cost = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t num_queries = sequences[s * 4 + 1], kv_len = sequences[s * 4 + 2];
    if (num_queries <= 0) continue;
    total_cost += num_queries * kv_len * head_dim * 4;
    for (int h = 0; h < num_heads; h += heads_per_item) {
      for (int64_t i = 0; i < num_queries; i += kQueryBlock) {
        items.push_back({static_cast<int32_t>(s), h, i});
      }
    }
  }
  const int64_t cost =
      items.empty() ? 0 : total_cost / static_cast<int64_t>(items.size()) * heads_per_item + 1;
  ParallelFor(static_cast<int64_t>(items.size()), cost, [&](int64_t n) {
    const WorkItem& item = items[n];
    const int32_t* seq = sequences + item.sequence * 4;
    const int64_t query_begin = seq[0], num_queries = seq[1], kv_len = seq[2];
    const int32_t* table = block_tables + seq[3];
    const int64_t num_cached = kv_len - num_queries;
    const int64_t g = item.head_begin / heads_per_group;
    const int64_t end = std::min(num_queries, item.first_query + kQueryBlock);
    const int64_t num_keys = num_cached + end;  // what the block's last query sees
    // Token j of the sequence: block table[j / block_size], slot j % block_size; its KV group g
    // starts at this element offset of the layer's storage.
    auto offset = [&](int64_t j) {
      return (static_cast<int64_t>(table[j / cs.block_size]) * cs.block_size +
              j % cs.block_size) * kv_row + g * head_dim;
    };
    std::vector<float> scores(num_keys);
    auto attend = [&](auto key, auto value) {
      for (int h = item.head_begin; h < item.head_begin + heads_per_item; ++h) {
        for (int64_t i = item.first_query; i < end; ++i) {
          const int64_t row = query_begin + i;
          AttendOneQuery(q + row * q_row + h * head_dim, head_dim, num_cached + i + 1, scale,
                         key, value, &scores, out + row * q_row + h * head_dim);
        }
      }
    };
    if (in_place) {
      const auto* kf = reinterpret_cast<const float*>(keys);
      const auto* vf = reinterpret_cast<const float*>(values);
      attend([&](int64_t j) { return kf + offset(j); }, [&](int64_t j) { return vf + offset(j); });
      return;
    }
    std::vector<float> k32(num_keys * head_dim), v32(num_keys * head_dim);
    for (int64_t j = 0; j < num_keys; ++j) {
      ConvertToF32(keys + offset(j) * elem, dtype, head_dim, k32.data() + j * head_dim);
      ConvertToF32(values + offset(j) * elem, dtype, head_dim, v32.data() + j * head_dim);
    }
    attend([&](int64_t j) { return k32.data() + j * head_dim; },
           [&](int64_t j) { return v32.data() + j * head_dim; });
  });
}

}  // namespace cpu
}  // namespace glm4v
