// KV-cache writes and causal attention over paged KV (prefill chunks and decode tokens alike),
// on the flash-style tiles of flash_attention.h.
#include <algorithm>
#include <vector>

#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {
// Query heads [first_head, first_head + heads) of KV group `group` (counted within the group)
// for a run of one sequence's queries.
struct WorkItem {
  int32_t sequence;
  int32_t group;
  int32_t first_head;
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
                    int num_heads, float scale, float* out, float* lse, ContextShare share) {
  const KvCacheShape& cs = cache.shape();
  const int head_dim = cs.head_dim;
  const int64_t kv_row = static_cast<int64_t>(cs.num_kv_heads) * head_dim;
  const int64_t q_row = static_cast<int64_t>(num_heads) * head_dim;
  const int heads_per_group = num_heads / cs.num_kv_heads;
  const DType dtype = cache.dtype();
  const size_t elem = DTypeSize(dtype);
  const auto* keys = static_cast<const unsigned char*>(cache.key_tensor(layer).raw_data());
  const auto* values = static_cast<const unsigned char*>(cache.value_tensor(layer).raw_data());
  // A block is a KV group's query heads (at most kFlashMaxRows of them) for a run of a
  // sequence's queries (row = query * heads + head): a decode token's heads share every key
  // tile, read once per group.
  const int heads_per_block = std::min<int>(heads_per_group, kFlashMaxRows);
  const int64_t queries_per_block = std::max<int64_t>(1, kFlashMaxRows / heads_per_block);

  std::vector<WorkItem> items;
  int64_t total_cost = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t num_queries = sequences[s * 4 + 1], kv_len = sequences[s * 4 + 2];
    if (num_queries <= 0) continue;
    total_cost += num_queries * num_heads * share.LocalTokens(kv_len) * head_dim * 4;
    for (int g = 0; g < cs.num_kv_heads; ++g) {
      for (int h = 0; h < heads_per_group; h += heads_per_block) {
        for (int64_t i = 0; i < num_queries; i += queries_per_block) {
          items.push_back({static_cast<int32_t>(s), g, h, i});
        }
      }
    }
  }
  const int64_t cost =
      items.empty() ? 0 : total_cost / static_cast<int64_t>(items.size()) + 1;
  ParallelFor(static_cast<int64_t>(items.size()), cost, [&](int64_t n) {
    const WorkItem& item = items[n];
    const int32_t* seq = sequences + item.sequence * 4;
    const int64_t query_begin = seq[0], num_queries = seq[1], kv_len = seq[2];
    const int32_t* table = block_tables + seq[3];
    const int64_t num_cached = kv_len - num_queries;
    const int64_t g = item.group;
    const int64_t end = std::min(num_queries, item.first_query + queries_per_block);
    const int heads = std::min(heads_per_block, heads_per_group - item.first_head);
    FlashQueryBlock block;
    // Causal: a query sees the cached keys, the chunk's keys before it and its own (of those,
    // the ones in this rank's share).
    block.AddQueries(q, out, q_row, head_dim, query_begin + item.first_query,
                     end - item.first_query, g * heads_per_group + item.first_head, heads,
                     [&](int64_t i) {
                       return share.LocalTokens(num_cached + item.first_query + i + 1);
                     });
    if (lse != nullptr) {
      const int64_t first_head = g * heads_per_group + item.first_head;
      for (int64_t r = 0; r < block.rows; ++r) {
        const int64_t row = query_begin + item.first_query + r / heads;
        block.lse[r] = lse + row * num_heads + first_head + r % heads;
      }
    }
    // Local token j of the sequence: block table[j / block_size], slot j % block_size; its KV
    // group g starts at this element offset of the layer's storage.
    auto offset = [&](int64_t j) {
      return (static_cast<int64_t>(table[j / cs.block_size]) * cs.block_size +
              j % cs.block_size) * kv_row + g * head_dim;
    };
    std::vector<float> key(head_dim);
    FlashAttend(block, head_dim, scale, [&](int64_t first, int64_t count, FlashScratch& tile) {
      float* kt = tile.kt();
      float* vt = tile.v();
      for (int64_t c = 0; c < count; ++c) {
        const int64_t at = offset(first + c) * static_cast<int64_t>(elem);
        ConvertToF32(keys + at, dtype, head_dim, key.data());
        for (int d = 0; d < head_dim; ++d) kt[d * kFlashKeyTile + c] = key[d];
        ConvertToF32(values + at, dtype, head_dim, vt + c * tile.dpad());
      }
      return FlashKeyTile{kt, vt};
    });
  });
}

}  // namespace cpu
}  // namespace glm4v
