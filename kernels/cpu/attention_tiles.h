// GEMM-shaped tile kernels of the CPU flash attention (flash_attention.h): a block of query rows
// against a tile of keys. Each has a scalar, an AVX2 and an AVX-512 form, picked by
// ActiveSimdLevel() (simd_level.h); they differ only in the order of the f32 sums.
//
// Layouts (all f32, row-major): head dims padded with zeros to a multiple of kTileDimAlign
// (`dpad`), so the vector loops never need a tail.
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

constexpr int kTileDimAlign = 16;  // head_dim is padded to this
constexpr int kTileKeyAlign = 64;  // ScoreTile's column count is a multiple of this

// s[r * lds + c] = sum over d < dpad of q[r * dpad + d] * kt[d * ldk + c], for r < rows and
// c < cols (cols a multiple of kTileKeyAlign, ldk >= cols, lds >= cols). kt holds the tile's
// keys transposed: row d is every key's d-th element.
void ScoreTile(const float* q, int64_t rows, int dpad, const float* kt, int64_t ldk, int64_t cols,
               float* s, int64_t lds);

// o[r * dpad + d] += sum over c < cols of p[r * ldp + c] * v[c * dpad + d], for r < rows and
// d < dpad: the tile's softmax weights times its values.
void AccumulateTile(const float* p, int64_t ldp, int64_t rows, int64_t cols, const float* v,
                    int dpad, float* o);

}  // namespace cpu
}  // namespace glm4v
