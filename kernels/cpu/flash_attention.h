// Flash-style attention on the CPU: a block of query rows against one KV head's keys. The keys
// come in tiles of kFlashKeyTile that a loader writes (keys transposed, values as rows); the
// scores and the weighted values of a tile are GEMM-shaped (attention_tiles.h, vectorized for
// the CPU's instruction set); the softmax is online, a running max and sum per row with the
// output rescaled when the max grows, so memory stays one tile whatever the number of keys.
// Dense (vision) and paged (decoder) attention both run on it; with grouped-query attention the
// rows of a block are a KV group's query heads, which share every key tile.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/row_kernels.h"

namespace glm4v {
namespace cpu {

constexpr int64_t kFlashMaxRows = 64;   // query rows per block
constexpr int64_t kFlashKeyTile = 256;  // keys per tile (a multiple of kTileKeyAlign)

// Per-thread buffers of one block (~0.4 MB at head_dim 128: they stay in L2).
class FlashScratch {
 public:
  // Sizes the buffers for `head_dim` and zeroes the padding the tile kernels read.
  void Prepare(int head_dim);
  int dpad() const { return dpad_; }
  float* q() { return q_.data(); }    // [kFlashMaxRows][dpad], scaled queries
  float* kt() { return kt_.data(); }  // [dpad][kFlashKeyTile], a tile's keys transposed
  float* v() { return v_.data(); }    // [kFlashKeyTile][dpad], its values
  float* s() { return s_.data(); }    // [kFlashMaxRows][kFlashKeyTile], scores then weights
  float* o() { return o_.data(); }    // [kFlashMaxRows][dpad], unnormalized outputs

 private:
  int head_dim_ = -1;
  int dpad_ = 0;
  std::vector<float> q_, kt_, v_, s_, o_;
};

// This thread's scratch.
FlashScratch& ThreadFlashScratch();

struct FlashQueryBlock {
  int64_t rows = 0;                  // <= kFlashMaxRows
  const float* q[kFlashMaxRows];     // row r's query vector (head_dim floats)
  float* out[kFlashMaxRows];         // where row r's output goes
  int64_t key_limit[kFlashMaxRows];  // row r attends keys [0, key_limit[r])
  // Optional (null: not wanted): where row r's log-sum-exp of its scaled scores goes (-inf when
  // it sees no key).
  float* lse[kFlashMaxRows];

  // Appends heads [first_head, first_head + heads) of `num_queries` queries, query-major (row =
  // query * heads + head): query i's vectors start at q_base / out_base + (first_row + i) *
  // row_stride, head h's head_dim floats at + h * head_dim; query i attends [0, key_limit(i)).
  template <typename KeyLimit>
  void AddQueries(const float* q_base, float* out_base, int64_t row_stride, int head_dim,
                  int64_t first_row, int64_t num_queries, int64_t first_head, int heads,
                  KeyLimit&& limit) {
    for (int64_t i = 0; i < num_queries; ++i) {
      const int64_t row = (first_row + i) * row_stride;
      for (int h = 0; h < heads; ++h) {
        const int64_t at = row + (first_head + h) * head_dim;
        q[rows] = q_base + at;
        out[rows] = out_base + at;
        lse[rows] = nullptr;
        key_limit[rows] = limit(i);
        ++rows;
      }
    }
  }
};

// A tile of keys [first, first + n) as the tile kernels read it: key c's element d at
// kt[d * kFlashKeyTile + c], value c's element d at v[c * dpad + d]; elements d >= head_dim are
// 0 in kt, and kt has kFlashKeyTile columns whatever n is.
struct FlashKeyTile {
  const float* kt;
  const float* v;
};

// out[r] = softmax(scale * q[r] . key(j), j < key_limit[r]) weighted sum of value(j).
// load(first, n, scratch) returns the tile of keys [first, first + n): either written into
// scratch.kt() / scratch.v() (d < head_dim only; the padding is kept 0), or a tile the caller
// arranged beforehand (dense attention arranges each head's keys once for all query blocks).
template <typename LoadTile>
void FlashAttend(const FlashQueryBlock& block, int head_dim, float scale, LoadTile&& load) {
  FlashScratch& scratch = ThreadFlashScratch();
  scratch.Prepare(head_dim);
  const int dpad = scratch.dpad();
  const int64_t rows = block.rows;
  float* const qs = scratch.q();
  float* const o = scratch.o();
  float* const s = scratch.s();
  int64_t keys = 0;
  double running_sum[kFlashMaxRows];
  float running_max[kFlashMaxRows];
  for (int64_t r = 0; r < rows; ++r) {
    for (int d = 0; d < head_dim; ++d) qs[r * dpad + d] = block.q[r][d] * scale;
    std::fill(o + r * dpad, o + (r + 1) * dpad, 0.0f);
    running_sum[r] = 0.0;
    running_max[r] = -std::numeric_limits<float>::infinity();
    keys = std::max(keys, block.key_limit[r]);
  }
  for (int64_t first = 0; first < keys; first += kFlashKeyTile) {
    const int64_t n = std::min(kFlashKeyTile, keys - first);
    const FlashKeyTile tile = load(first, n, scratch);
    const int64_t cols = (n + kTileKeyAlign - 1) / kTileKeyAlign * kTileKeyAlign;
    ScoreTile(qs, rows, dpad, tile.kt, kFlashKeyTile, cols, s, kFlashKeyTile);
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * kFlashKeyTile;
      const int64_t valid = std::clamp<int64_t>(block.key_limit[r] - first, 0, n);
      if (valid > 0) {
        const float tile_max = MaxRow(sr, valid);
        const float new_max = std::max(running_max[r], tile_max);
        const float rescale = running_max[r] == -std::numeric_limits<float>::infinity()
                                  ? 0.0f
                                  : std::exp(running_max[r] - new_max);
        ExpRow(sr, valid, 1.0f, new_max, sr);
        double sum = 0.0;
        for (int64_t c = 0; c < valid; ++c) sum += sr[c];
        running_sum[r] = running_sum[r] * rescale + sum;
        if (rescale != 1.0f) {
          for (int d = 0; d < dpad; ++d) o[r * dpad + d] *= rescale;
        }
        running_max[r] = new_max;
      }
      std::fill(sr + valid, sr + n, 0.0f);  // keys this row may not see weigh nothing
    }
    AccumulateTile(s, kFlashKeyTile, rows, n, tile.v, dpad, o);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = running_sum[r] > 0 ? static_cast<float>(1.0 / running_sum[r]) : 0.0f;
    for (int d = 0; d < head_dim; ++d) block.out[r][d] = o[r * dpad + d] * inv;
    if (block.lse[r] != nullptr) {
      *block.lse[r] = running_sum[r] > 0
                          ? running_max[r] + static_cast<float>(std::log(running_sum[r]))
                          : -std::numeric_limits<float>::infinity();
    }
  }
}

}  // namespace cpu
}  // namespace glm4v
