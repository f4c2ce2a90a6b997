// Dense softmax attention (vision tower; any batch of equal-length sequences), GQA-aware, on the
// flash-style tiles of flash_attention.h.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/flash_attention.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {

void Attention(const float* q, const float* k, const float* v, int64_t batch, int64_t len,
               int num_heads, int num_kv_heads, int head_dim, bool causal, float scale,
               float* out) {
  const int64_t q_stride = static_cast<int64_t>(num_heads) * head_dim;
  const int64_t kv_stride = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int heads_per_group = num_heads / num_kv_heads;
  const int dpad = (head_dim + kTileDimAlign - 1) / kTileDimAlign * kTileDimAlign;
  const int64_t tiles = (len + kFlashKeyTile - 1) / kFlashKeyTile;
  const int64_t tile_floats = kFlashKeyTile * dpad;

  // Every query block of a KV head reads all its key tiles: arrange them once, keys transposed
  // (tile t of head (b, g) at kt[((b * kv_heads + g) * tiles + t) * tile_floats]), values as
  // padded rows; zero-filled so the padding reads as 0.
  std::vector<float> kt(batch * num_kv_heads * tiles * tile_floats, 0.0f);
  std::vector<float> vt(kt.size(), 0.0f);
  ParallelFor(batch * num_kv_heads * tiles, kFlashKeyTile * head_dim * 8, [&](int64_t item) {
    const int64_t t = item % tiles;
    const int64_t g = (item / tiles) % num_kv_heads;
    const int64_t b = item / (tiles * num_kv_heads);
    float* kd = kt.data() + item * tile_floats;
    float* vd = vt.data() + item * tile_floats;
    const int64_t n = std::min(kFlashKeyTile, len - t * kFlashKeyTile);
    for (int64_t c = 0; c < n; ++c) {
      const int64_t row = b * len + t * kFlashKeyTile + c;
      const float* key = k + row * kv_stride + g * head_dim;
      for (int d = 0; d < head_dim; ++d) kd[d * kFlashKeyTile + c] = key[d];
      std::memcpy(vd + c * dpad, v + row * kv_stride + g * head_dim, head_dim * sizeof(float));
    }
  });

  // A block is a KV group's query heads (at most kFlashMaxRows of them) for a run of queries
  // (row = query * heads + head).
  const int heads_per_block = std::min<int>(heads_per_group, kFlashMaxRows);
  const int head_chunks = (heads_per_group + heads_per_block - 1) / heads_per_block;
  const int64_t queries_per_block = std::max<int64_t>(1, kFlashMaxRows / heads_per_block);
  const int64_t blocks = (len + queries_per_block - 1) / queries_per_block;
  const int64_t cost = queries_per_block * heads_per_block * len * head_dim * 4;
  ParallelFor(batch * num_kv_heads * head_chunks * blocks, cost, [&](int64_t item) {
    const int64_t blk = item % blocks;
    const int chunk = static_cast<int>((item / blocks) % head_chunks);
    const int64_t g = (item / (blocks * head_chunks)) % num_kv_heads;
    const int64_t b = item / (blocks * head_chunks * num_kv_heads);
    const int first_head = chunk * heads_per_block;
    const int heads = std::min(heads_per_block, heads_per_group - first_head);
    const int64_t first_query = blk * queries_per_block;
    const int64_t num_queries = std::min(queries_per_block, len - first_query);
    FlashQueryBlock block;
    block.AddQueries(q, out, q_stride, head_dim, b * len + first_query, num_queries,
                     g * heads_per_group + first_head, heads,
                     [&](int64_t i) { return causal ? first_query + i + 1 : len; });
    const int64_t head_tiles = (b * num_kv_heads + g) * tiles;
    FlashAttend(block, head_dim, scale, [&](int64_t first, int64_t, FlashScratch&) {
      const int64_t at = (head_tiles + first / kFlashKeyTile) * tile_floats;
      return FlashKeyTile{kt.data() + at, vt.data() + at};
    });
  });
}

}  // namespace cpu
}  // namespace glm4v
