// KV-cache writes and causal attention over paged KV (prefill chunks and decode tokens alike).
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_core.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {
constexpr int64_t kQueryBlock = 16;

struct WorkItem {
  int32_t sequence;
  int32_t head;
  int64_t first_query;  // within the sequence's new tokens
};
}  // namespace

void WriteKvCache(const float* k, const float* v, absl::Span<const int32_t> slots, int layer,
                  PagedKvCache* cache) {
  const KvCacheShape& cs = cache->shape();
  const int64_t row = static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim;
  for (size_t i = 0; i < slots.size(); ++i) {
    const int block = slots[i] / cs.block_size, offset = slots[i] % cs.block_size;
    std::memcpy(cache->key_block(layer, block) + offset * row, k + i * row, row * sizeof(float));
    std::memcpy(cache->value_block(layer, block) + offset * row, v + i * row,
                row * sizeof(float));
  }
}

void PagedAttention(const float* q, const PagedKvCache& cache, int layer,
                    absl::Span<const PagedSequence> sequences, int num_heads, float scale,
                    float* out) {
  const KvCacheShape& cs = cache.shape();
  const int head_dim = cs.head_dim;
  const int64_t kv_row = static_cast<int64_t>(cs.num_kv_heads) * head_dim;
  const int64_t q_row = static_cast<int64_t>(num_heads) * head_dim;
  const int heads_per_group = num_heads / cs.num_kv_heads;

  std::vector<WorkItem> items;
  int64_t max_keys = 0, total_cost = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const PagedSequence& seq = sequences[s];
    max_keys = std::max(max_keys, seq.num_cached + seq.num_queries);
    total_cost += seq.num_queries * (seq.num_cached + seq.num_queries) * head_dim * 4;
    for (int h = 0; h < num_heads; ++h) {
      for (int64_t i = 0; i < seq.num_queries; i += kQueryBlock) {
        items.push_back({static_cast<int32_t>(s), h, i});
      }
    }
  }
  const int64_t cost = items.empty() ? 0 : total_cost / static_cast<int64_t>(items.size()) + 1;
  ParallelFor(static_cast<int64_t>(items.size()), cost, [&](int64_t n) {
    const WorkItem& item = items[n];
    const PagedSequence& seq = sequences[item.sequence];
    const int64_t g = item.head / heads_per_group;
    // Token j of the sequence: block table[j / block_size], slot j % block_size.
    auto key = [&](int64_t j) {
      return cache.key_block(layer, seq.block_table[j / cs.block_size]) +
             (j % cs.block_size) * kv_row + g * head_dim;
    };
    auto value = [&](int64_t j) {
      return cache.value_block(layer, seq.block_table[j / cs.block_size]) +
             (j % cs.block_size) * kv_row + g * head_dim;
    };
    std::vector<float> scores(max_keys);
    const int64_t end = std::min(seq.num_queries, item.first_query + kQueryBlock);
    for (int64_t i = item.first_query; i < end; ++i) {
      const int64_t row = seq.query_begin + i;
      AttendOneQuery(q + row * q_row + item.head * head_dim, head_dim, seq.num_cached + i + 1,
                     scale, key, value, &scores, out + row * q_row + item.head * head_dim);
    }
  });
}

}  // namespace cpu
}  // namespace glm4v
