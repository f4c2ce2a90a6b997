// Token selection on the GPU: argmax and temperature / top-k / top-p sampling, one row of
// logits [rows, vocab] per sequence. T = float or __nv_bfloat16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace glm4v::cuda {

// Per-row sampling settings (device array). temperature <= 0 means greedy (argmax).
// top_k <= 0 or >= vocab disables top-k; top_p >= 1 disables top-p. Ties at a cut-off are kept
// (as HF's top-k warper does). `seed` must change every step (e.g. hash(request seed, step)):
// the draw is a deterministic function of (seed, logits).
struct SamplingParams {
  float temperature = 1.f;
  int32_t top_k = 0;
  float top_p = 1.f;
  uint64_t seed = 0;
};

// out[r] = index of the largest logit of row r (first on ties; NaN never wins).
template <typename T>
cudaError_t ArgmaxRows(const T* logits, int64_t rows, int64_t vocab, int32_t* out,
                       cudaStream_t stream);

// out[r] = a token drawn from softmax(logits[r] / temperature) restricted to the top-k tokens
// and then to the smallest top set with probability mass >= top_p (exact categorical sampling
// by the Gumbel-max trick over the kept set).
template <typename T>
cudaError_t SampleRows(const T* logits, int64_t rows, int64_t vocab, const SamplingParams* params,
                       int32_t* out, cudaStream_t stream);

// In place on f32 rows: for row r, the ids penalty_ids[penalty_offsets[r] .. [r + 1]) get the
// CTRL repetition penalty (x > 0 ? x / p : x * p, p = penalties[r]; ids unique per row), then
// suppress_ids[...] become -inf. Offsets are device arrays of rows + 1 entries.
cudaError_t ApplyPenaltiesRows(float* logits, int64_t rows, int64_t vocab, const float* penalties,
                               const int32_t* penalty_offsets, const int32_t* penalty_ids,
                               const int32_t* suppress_offsets, const int32_t* suppress_ids,
                               cudaStream_t stream);

// In place on f32 rows: row r's logits at ids[offsets[r] .. [r + 1]) get values[same] added
// (logit_bias and the presence / frequency penalties; ids unique per row).
cudaError_t AddToRows(float* logits, int64_t rows, int64_t vocab, const int32_t* offsets,
                      const int32_t* ids, const float* values, cudaStream_t stream);

// Per row r with temperature divisor d = divisors[r]: log_z = log(sum exp(x / d));
// chosen_logprob[r] = x[chosen[r]] / d - log_z; and the top_n best ids (value, then lower id)
// with their logprobs into top_ids / top_logprobs [rows, top_n] (top_n <= 64).
cudaError_t LogprobRows(const float* logits, int64_t rows, int64_t vocab, const float* divisors,
                        const int32_t* chosen, int top_n, float* chosen_logprob,
                        int32_t* top_ids, float* top_logprobs, cudaStream_t stream);

}  // namespace glm4v::cuda
