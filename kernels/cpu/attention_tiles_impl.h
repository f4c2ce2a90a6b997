// Per-instruction-set forms of attention_tiles.h (internal to the tile kernels).
#pragma once

#include <cstdint>

#include "kernels/cpu/attention_tiles.h"

namespace glm4v {
namespace cpu {

#define GLM4V_ATTENTION_TILES(ns)                                                             \
  namespace ns {                                                                              \
  void ScoreTile(const float* q, int64_t rows, int dpad, const float* kt, int64_t ldk,        \
                 int64_t cols, float* s, int64_t lds);                                        \
  void AccumulateTile(const float* p, int64_t ldp, int64_t rows, int64_t cols, const float* v, \
                      int dpad, float* o);                                                    \
  }

GLM4V_ATTENTION_TILES(scalar)
GLM4V_ATTENTION_TILES(avx2)
GLM4V_ATTENTION_TILES(avx512)

#undef GLM4V_ATTENTION_TILES

}  // namespace cpu
}  // namespace glm4v
