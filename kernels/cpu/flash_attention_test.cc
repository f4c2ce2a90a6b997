// The attention tile kernels and the flash driver at every SIMD level the CPU has, against
// float64 loops: odd row counts, head dims that need padding, several key tiles, causal limits
// that end inside, at and before a tile, rows that see no key of a tile, grouped queries.
#include "kernels/cpu/flash_attention.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention_tiles.h"
#include "kernels/cpu/simd_level_testing.h"

namespace glm4v::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

class AttentionTilesTest : public SimdLevelTest {};

TEST_P(AttentionTilesTest, ScoreTileIsQTimesTransposedKeys) {
  for (const int dpad : {16, 112, 128}) {
    for (const int64_t rows : {1, 3, 4, 7, 64}) {
      const int64_t cols = 128, ldk = 256, lds = 320;
      const std::vector<float> q = Random(rows * dpad, 1);
      const std::vector<float> kt = Random(dpad * ldk, 2);
      std::vector<float> s(rows * lds, -7.0f);
      ScoreTile(q.data(), rows, dpad, kt.data(), ldk, cols, s.data(), lds);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          double want = 0;
          for (int d = 0; d < dpad; ++d) want += double{q[r * dpad + d]} * kt[d * ldk + c];
          ASSERT_NEAR(s[r * lds + c], want, 1e-4 * (1 + std::abs(want)))
              << "dpad " << dpad << " rows " << rows << " r " << r << " c " << c;
        }
        EXPECT_EQ(s[r * lds + cols], -7.0f);  // nothing written past cols
      }
    }
  }
}

TEST_P(AttentionTilesTest, AccumulateTileAddsWeightedValues) {
  for (const int dpad : {16, 48, 112, 128}) {
    for (const int64_t rows : {1, 2, 5, 64}) {
      for (const int64_t cols : {1, 37, 256}) {
        const int64_t ldp = 256;
        const std::vector<float> p = Random(rows * ldp, 3);
        const std::vector<float> v = Random(cols * dpad, 4);
        std::vector<float> o = Random(rows * dpad, 5);
        const std::vector<float> before = o;
        AccumulateTile(p.data(), ldp, rows, cols, v.data(), dpad, o.data());
        for (int64_t r = 0; r < rows; ++r) {
          for (int d = 0; d < dpad; ++d) {
            double want = before[r * dpad + d];
            for (int64_t c = 0; c < cols; ++c) want += double{p[r * ldp + c]} * v[c * dpad + d];
            ASSERT_NEAR(o[r * dpad + d], want, 1e-4 * (1 + std::abs(want)))
                << "dpad " << dpad << " rows " << rows << " cols " << cols;
          }
        }
      }
    }
  }
}

GLM4V_INSTANTIATE_SIMD_LEVELS(AttentionTilesTest);

class FlashAttentionTest : public SimdLevelTest {};

// Writes keys [first, first + n) of row-major k / v ([keys][head_dim]) into the scratch tile.
FlashKeyTile Load(const std::vector<float>& k, const std::vector<float>& v, int head_dim,
                  int64_t first, int64_t n, FlashScratch& tile) {
  for (int64_t c = 0; c < n; ++c) {
    for (int d = 0; d < head_dim; ++d) {
      tile.kt()[d * kFlashKeyTile + c] = k[(first + c) * head_dim + d];
    }
    std::memcpy(tile.v() + c * tile.dpad(), v.data() + (first + c) * head_dim,
                head_dim * sizeof(float));
  }
  return FlashKeyTile{tile.kt(), tile.v()};
}

// One KV head of `num_keys` keys; rows with their own limits.
void CheckFlash(int head_dim, int64_t num_keys, const std::vector<int64_t>& limits,
                uint32_t seed) {
  const int64_t rows = static_cast<int64_t>(limits.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const std::vector<float> q = Random(rows * head_dim, seed, 2.0f);
  const std::vector<float> k = Random(num_keys * head_dim, seed + 1, 2.0f);
  const std::vector<float> v = Random(num_keys * head_dim, seed + 2);
  std::vector<float> out(rows * head_dim, -1.0f);
  FlashQueryBlock block;
  block.AddQueries(q.data(), out.data(), head_dim, head_dim, 0, rows, 0, 1,
                   [&](int64_t i) { return limits[i]; });
  int64_t loaded = 0;
  FlashAttend(block, head_dim, scale, [&](int64_t first, int64_t n, FlashScratch& tile) {
    EXPECT_LE(first + n, num_keys);
    loaded += n;
    return Load(k, v, head_dim, first, n, tile);
  });
  int64_t max_limit = 0;
  for (int64_t l : limits) max_limit = std::max(max_limit, l);
  EXPECT_EQ(loaded, max_limit);  // every key up to the widest limit, once
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = limits[r];
    std::vector<double> w(n);
    double max_s = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int d = 0; d < head_dim; ++d) dot += double{q[r * head_dim + d]} * k[j * head_dim + d];
      w[j] = dot * scale;
      max_s = std::max(max_s, w[j]);
    }
    for (int64_t j = 0; j < n; ++j) sum += (w[j] = std::exp(w[j] - max_s));
    for (int d = 0; d < head_dim; ++d) {
      double want = 0;
      for (int64_t j = 0; j < n; ++j) want += w[j] / sum * v[j * head_dim + d];
      ASSERT_NEAR(out[r * head_dim + d], want, 2e-5 + 1e-4 * std::abs(want))
          << "head_dim " << head_dim << " keys " << num_keys << " row " << r << " limit " << n;
    }
  }
}

TEST_P(FlashAttentionTest, MatchesFloat64AcrossTilesAndLimits) {
  // One tile, all rows see all keys.
  CheckFlash(64, 100, std::vector<int64_t>(5, 100), 10);
  // Several tiles; limits inside the first tile, at a tile edge, past it, the full length.
  CheckFlash(112, 700, {1, 17, 255, 256, 257, 511, 600, 700, 700}, 20);
  // Causal rows of a prefill chunk after 300 cached keys, head dim 128 (the decoder's).
  std::vector<int64_t> causal;
  for (int i = 0; i < 64; ++i) causal.push_back(300 + i + 1);
  CheckFlash(128, 364, causal, 30);
  // A row that sees no key gives zeros; a head dim that needs padding (40 -> 48).
  CheckFlash(40, 300, {0, 300, 5}, 40);
}

TEST_P(FlashAttentionTest, LargeScoresStayFinite) {
  // Scores spread over hundreds of units: the running max must rescale, not overflow.
  const int head_dim = 16;
  const int64_t keys = 600;
  std::vector<int64_t> limits = {600, 600, 300};
  std::vector<float> q(3 * head_dim, 0.0f), k(keys * head_dim, 0.0f), v(keys * head_dim);
  for (int r = 0; r < 3; ++r) q[r * head_dim] = 40.0f;
  for (int64_t j = 0; j < keys; ++j) {
    k[j * head_dim] = static_cast<float>(j) / 10.0f;  // grows tile by tile
    v[j * head_dim + 1] = static_cast<float>(j);
  }
  std::vector<float> out(3 * head_dim);
  FlashQueryBlock block;
  block.AddQueries(q.data(), out.data(), head_dim, head_dim, 0, 3, 0, 1,
                   [&](int64_t i) { return limits[i]; });
  FlashAttend(block, head_dim, 1.0f, [&](int64_t first, int64_t n, FlashScratch& tile) {
    return Load(k, v, head_dim, first, n, tile);
  });
  // Scores 4 * j: the last key dominates (e^-4 for the one before).
  const double e4 = std::exp(-4.0);
  const double want_full = (599 + 598 * e4 + 597 * e4 * e4) / (1 + e4 + e4 * e4);
  EXPECT_NEAR(out[1], want_full, 1e-2);
  EXPECT_NEAR(out[head_dim + 1], want_full, 1e-2);
  const double want_half = (299 + 298 * e4 + 297 * e4 * e4) / (1 + e4 + e4 * e4);
  EXPECT_NEAR(out[2 * head_dim + 1], want_half, 1e-2);
}

GLM4V_INSTANTIATE_SIMD_LEVELS(FlashAttentionTest);

}  // namespace
}  // namespace glm4v::cpu
