// Kernels over one row of f32 values: for the sampler over logits max, argmax, softmax
// normalizer, exp, and collecting the ids at or above a threshold; for the models the
// activations GELU and SiLU-times-gate.
//
// Each has a scalar, an AVX2 and an AVX-512 form, picked by ActiveSimdLevel() (simd_level.h).
// Every form reads the row once per call. The scalar forms use std::exp / std::erf; the SIMD
// forms a polynomial exp within ~2 ulp of it (values below e^-87 may flush to 0) and an erf
// within 2e-7 of std::erf.
#pragma once

#include <cstdint>

namespace glm4v {
namespace cpu {

// Largest value (-inf for an empty row; NaNs are skipped).
float MaxRow(const float* row, int64_t n);

constexpr int kMaxBlock = 64;

// block_max[b] = the largest value of row[b * kMaxBlock, min(n, (b + 1) * kMaxBlock)) for every
// block b (NaNs skipped); returns the largest of them. The k-th largest block max is a lower
// bound of the row's k-th largest value: top-k selection scans only the blocks above it.
float BlockMaxRow(const float* row, int64_t n, float* block_max);

// Index of the first largest value; 0 when n == 0 or no value is larger than -inf.
int64_t ArgmaxRow(const float* row, int64_t n);

// Sum over i of exp(row[i] * scale - shift), accumulated in double (f32 runs of at most 256
// terms). `scale` applies a temperature (1 / T) without rewriting the row.
double SumExpRow(const float* row, int64_t n, float scale, float shift);

// out[i] = exp(row[i] * scale - shift) for i in [0, n), with the exp SumExpRow uses.
void ExpRow(const float* row, int64_t n, float scale, float shift, float* out);

// Extra entries CollectAtLeast may write past the ids it returns.
constexpr int kCollectSlack = 16;

// Writes the ids i in [begin, end) with row[i] >= threshold to out, ascending, and returns
// how many. `out` must have room for (end - begin) + kCollectSlack entries.
int64_t CollectAtLeast(const float* row, int64_t begin, int64_t end, float threshold,
                       int32_t* out);

// x[i] = x[i] / 2 * (1 + erf(x[i] / sqrt 2)) (exact, erf-based GELU) for i in [0, n).
void GeluRow(float* x, int64_t n);

// y[i] = a[i] / (1 + exp(-a[i])) * b[i] for i in [0, n) (SiLU(a) * b; y may equal a or b).
void SiluMulRow(const float* a, const float* b, int64_t n, float* y);

}  // namespace cpu
}  // namespace glm4v
