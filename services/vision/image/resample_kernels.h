// Band kernels of the PIL-exact bicubic resize (bicubic_resize.h), vectorized: the same 32-bit
// fixed-point sums as Pillow's Resample.c (INT32 accumulators, round half up, clamp to uint8),
// so every result is bit-identical to the scalar form whatever the instruction set.
//
// The horizontal pass transposes a band of 16 rows (SSE2 16x16 byte transposes) so the 16
// rows of one input sample are contiguous, and accumulates each output sample for all 16 rows
// at once; the vertical pass accumulates contiguous runs of a row. Each is compiled for AVX-512,
// AVX2 and baseline x86-64 and picked by ActiveSimdLevel() (kernels/cpu/simd_level.h).
#pragma once

#include <cstdint>
#include <vector>

#include "services/vision/image/bicubic_resize.h"

namespace glm4v {

inline constexpr int kResampleBandRows = 16;

// Horizontal pass of rows [y0, y0 + rows), rows <= kResampleBandRows, of an interleaved RGB
// image `in_w` pixels wide: writes the same rows of `out` (taps.first.size() pixels wide).
// `scratch` is reused between calls (one per thread).
void ResampleHorizontalBand(const uint8_t* in, int in_w, int y0, int rows,
                            const ResampleTaps& taps, uint8_t* out,
                            std::vector<uint8_t>* scratch);

// Vertical pass: output rows [y0, y1) of an interleaved RGB image `w` pixels wide, from `in`
// (taps index its rows).
void ResampleVerticalRows(const uint8_t* in, int w, const ResampleTaps& taps, int y0, int y1,
                          uint8_t* out);

// The same, each output value mapped through lut[channel][value] into planar floats
// (planes + channel * plane_size + y * w + x): resize and normalization in one pass.
void ResampleVerticalRowsToPlanes(const uint8_t* in, int w, const ResampleTaps& taps, int y0,
                                  int y1, const float (*lut)[256], float* planes,
                                  size_t plane_size);

}  // namespace glm4v
