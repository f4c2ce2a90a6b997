#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/sampling.h"

namespace glm4v::cuda {
namespace {

constexpr int kThreads = 1024;

// Order-preserving map of a float to uint32 (larger float -> larger key); NaN -> 0 (lowest).
__device__ __forceinline__ uint32_t SortKey(float x) {
  if (x != x) return 0u;
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Arg-max over the block of (value, index), smallest index on ties. Result in every thread.
struct Best {
  float value;
  int32_t index;
};
__device__ __forceinline__ Best Better(Best a, Best b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index && b.index >= 0)) return b;
  if (a.index < 0) return b;
  return a;
}
__device__ Best BlockArgmax(Best v, Best* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, v.value, o), __shfl_xor_sync(0xffffffffu, v.index, o)};
    v = Better(v, other);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < (blockDim.x >> 5) ? scratch[lane] : Best{-INFINITY, -1};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, v.value, o), __shfl_xor_sync(0xffffffffu, v.index, o)};
    v = Better(v, other);
  }
  return v;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) ArgmaxKernel(const T* logits, int64_t vocab,
                                                         int32_t* out) {
  __shared__ Best scratch[32];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  Best best{-INFINITY, -1};
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = ToFloat(row[i]);
    if (x == x) best = Better(best, Best{x, static_cast<int32_t>(i)});
  }
  best = BlockArgmax(best, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = best.index < 0 ? 0 : best.index;
}

// Counter-based uniform in (0, 1) from (seed, index): splitmix64 finalizer.
__device__ __forceinline__ float Uniform(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (static_cast<float>(z >> 40) + 0.5f) * (1.f / 16777216.f);
}

// Radix select over 8-bit digits, most significant first. `Weight(key)` is what each element
// contributes (1 for counts, its probability for mass); picks the digit where the weight
// accumulated from the top reaches `target`. Returns the selected full key (the cut-off).
template <typename WeightFn>
__device__ uint32_t RadixSelectFromTop(int64_t vocab, float target,
                                       WeightFn weight_of, float* hist, uint32_t* shared_prefix,
                                       float* shared_target) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0.f;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      float w;
      uint32_t key;
      weight_of(i, &key, &w);
      if (w > 0.f && (key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], w);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float acc = 0.f;
      int sel = -1, lowest = -1;
      for (int b = 255; b >= 0; --b) {
        if (hist[b] <= 0.f) continue;
        lowest = b;
        if (acc + hist[b] >= target) {
          sel = b;
          break;
        }
        acc += hist[b];
      }
      if (sel < 0) {  // rounding left the target unreached: take everything down to the bottom
        sel = lowest < 0 ? 0 : lowest;
        acc -= lowest < 0 ? 0.f : hist[sel];
      }
      *shared_target = fmaxf(target - acc, 0.f);
      *shared_prefix = prefix | (static_cast<uint32_t>(sel) << shift);
    }
    __syncthreads();
    prefix = *shared_prefix;
    target = *shared_target;
    mask |= 255u << shift;
    __syncthreads();
  }
  return prefix;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) SampleKernel(const T* logits, int64_t vocab,
                                                         const SamplingParams* params,
                                                         int32_t* out) {
  __shared__ float scratch[32];
  __shared__ Best best_scratch[32];
  __shared__ float hist[256];
  __shared__ uint32_t shared_prefix;
  __shared__ float shared_target;
  const SamplingParams sp = params[blockIdx.x];
  const T* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;

  if (!(sp.temperature > 0.f) || sp.top_k == 1) {
    Best best{-INFINITY, -1};
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = ToFloat(row[i]);
      if (x == x) best = Better(best, Best{x, static_cast<int32_t>(i)});
    }
    best = BlockArgmax(best, best_scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = best.index < 0 ? 0 : best.index;
    return;
  }
  const float inv_t = 1.f / sp.temperature;

  // Top-k cut-off: the k-th largest key (counts as weights).
  uint32_t cutoff = 0;
  if (sp.top_k > 0 && sp.top_k < vocab) {
    cutoff = RadixSelectFromTop(
        vocab, static_cast<float>(sp.top_k),
        [&](int64_t i, uint32_t* key, float* w) {
          *key = SortKey(ToFloat(row[i]));
          *w = 1.f;
        },
        hist, &shared_prefix, &shared_target);
  }

  float local_max = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = ToFloat(row[i]) * inv_t;
    if (x == x) local_max = fmaxf(local_max, x);
  }
  const float max_x = BlockMax(local_max, scratch);

  // Top-p cut-off over the top-k survivors: smallest top set with mass >= top_p * total.
  if (sp.top_p < 1.f) {
    float local_sum = 0.f;
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float raw = ToFloat(row[i]);
      if (SortKey(raw) >= cutoff && raw == raw) local_sum += expf(raw * inv_t - max_x);
    }
    const float total = BlockSum(local_sum, scratch);
    const float target = fmaxf(sp.top_p, 0.f) * total;
    const uint32_t cutoff_k = cutoff;
    const uint32_t cutoff_p = RadixSelectFromTop(
        vocab, target,
        [&](int64_t i, uint32_t* key, float* w) {
          const float raw = ToFloat(row[i]);
          *key = SortKey(raw);
          *w = (*key >= cutoff_k && raw == raw) ? expf(raw * inv_t - max_x) : 0.f;
        },
        hist, &shared_prefix, &shared_target);
    cutoff = cutoff_p > cutoff ? cutoff_p : cutoff;
  }

  // Gumbel-max over the kept set: argmax(x_i + G_i) is a draw from softmax(x) on that set.
  Best best{-INFINITY, -1};
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float raw = ToFloat(row[i]);
    if (raw != raw || SortKey(raw) < cutoff) continue;
    const float gumbel = -logf(-logf(Uniform(sp.seed, static_cast<uint64_t>(i))));
    best = Better(best, Best{raw * inv_t - max_x + gumbel, static_cast<int32_t>(i)});
  }
  best = BlockArgmax(best, best_scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = best.index < 0 ? 0 : best.index;
}

__global__ void __launch_bounds__(256) PenaltyKernel(float* logits, int64_t vocab,
                                                    const float* penalties,
                                                    const int32_t* penalty_offsets,
                                                    const int32_t* penalty_ids,
                                                    const int32_t* suppress_offsets,
                                                    const int32_t* suppress_ids) {
  float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const float p = penalties[blockIdx.x];
  if (p != 1.f) {
    for (int32_t j = penalty_offsets[blockIdx.x] + threadIdx.x; j < penalty_offsets[blockIdx.x + 1];
         j += blockDim.x) {
      float& x = row[penalty_ids[j]];
      x = x > 0.f ? x / p : x * p;
    }
  }
  __syncthreads();  // a suppressed id may also be a penalized one: suppression wins
  for (int32_t j = suppress_offsets[blockIdx.x] + threadIdx.x; j < suppress_offsets[blockIdx.x + 1];
       j += blockDim.x) {
    row[suppress_ids[j]] = -INFINITY;
  }
}

// Ids are unique per row, so the threads' writes never collide.
__global__ void __launch_bounds__(256) AddToRowsKernel(float* logits, int64_t vocab,
                                                       const int32_t* offsets, const int32_t* ids,
                                                       const float* values) {
  float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  for (int32_t j = offsets[blockIdx.x] + threadIdx.x; j < offsets[blockIdx.x + 1];
       j += blockDim.x) {
    row[ids[j]] += values[j];
  }
}

constexpr int kMaxTopN = 64;

__global__ void __launch_bounds__(kThreads) LogprobKernel(const float* logits, int64_t vocab,
                                                          const float* divisors,
                                                          const int32_t* chosen, int top_n,
                                                          float* chosen_logprob,
                                                          int32_t* top_ids,
                                                          float* top_logprobs) {
  __shared__ float scratch[32];
  __shared__ Best best_scratch[32];
  __shared__ int32_t taken[kMaxTopN];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const float d = divisors[blockIdx.x];
  float local_max = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = row[i] / d;
    if (x == x) local_max = fmaxf(local_max, x);
  }
  const float max_x = BlockMax(local_max, scratch);
  float local_sum = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = row[i] / d;
    if (x == x && max_x > -INFINITY) local_sum += expf(x - max_x);
  }
  const float log_z = max_x + logf(BlockSum(local_sum, scratch));
  if (threadIdx.x == 0) chosen_logprob[blockIdx.x] = row[chosen[blockIdx.x]] / d - log_z;
  // Top n by repeated block arg-max, skipping the ids already taken (n is small).
  for (int k = 0; k < top_n; ++k) {
    Best best{-INFINITY, -1};
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = row[i] / d;
      if (x != x) continue;
      bool used = false;
      for (int t = 0; t < k; ++t) used |= taken[t] == static_cast<int32_t>(i);
      if (!used) best = Better(best, Best{x, static_cast<int32_t>(i)});
    }
    best = BlockArgmax(best, best_scratch);
    if (threadIdx.x == 0) {
      taken[k] = best.index;
      top_ids[static_cast<int64_t>(blockIdx.x) * top_n + k] = best.index;
      top_logprobs[static_cast<int64_t>(blockIdx.x) * top_n + k] =
          best.index < 0 ? -INFINITY : best.value - log_z;
    }
    __syncthreads();
  }
}

}  // namespace

cudaError_t ApplyPenaltiesRows(float* logits, int64_t rows, int64_t vocab, const float* penalties,
                               const int32_t* penalty_offsets, const int32_t* penalty_ids,
                               const int32_t* suppress_offsets, const int32_t* suppress_ids,
                               cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  PenaltyKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(
      logits, vocab, penalties, penalty_offsets, penalty_ids, suppress_offsets, suppress_ids);
  return cudaGetLastError();
}

cudaError_t AddToRows(float* logits, int64_t rows, int64_t vocab, const int32_t* offsets,
                      const int32_t* ids, const float* values, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  AddToRowsKernel<<<static_cast<unsigned>(rows), 256, 0, stream>>>(logits, vocab, offsets, ids,
                                                                   values);
  return cudaGetLastError();
}

cudaError_t LogprobRows(const float* logits, int64_t rows, int64_t vocab, const float* divisors,
                        const int32_t* chosen, int top_n, float* chosen_logprob,
                        int32_t* top_ids, float* top_logprobs, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || vocab > 0x7fffffff || rows > 0x7fffffff || top_n < 0 || top_n > kMaxTopN) {
    return cudaErrorInvalidValue;
  }
  LogprobKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      logits, vocab, divisors, chosen, top_n, chosen_logprob, top_ids, top_logprobs);
  return cudaGetLastError();
}

template <typename T>
cudaError_t ArgmaxRows(const T* logits, int64_t rows, int64_t vocab, int32_t* out,
                       cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || vocab > 0x7fffffff || rows > 0x7fffffff) return cudaErrorInvalidValue;
  ArgmaxKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t SampleRows(const T* logits, int64_t rows, int64_t vocab, const SamplingParams* params,
                       int32_t* out, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || vocab > 0x7fffffff || rows > 0x7fffffff) return cudaErrorInvalidValue;
  SampleKernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, params,
                                                                        out);
  return cudaGetLastError();
}

template cudaError_t ArgmaxRows<float>(const float*, int64_t, int64_t, int32_t*, cudaStream_t);
template cudaError_t ArgmaxRows<bf16>(const bf16*, int64_t, int64_t, int32_t*, cudaStream_t);
template cudaError_t SampleRows<float>(const float*, int64_t, int64_t, const SamplingParams*,
                                       int32_t*, cudaStream_t);
template cudaError_t SampleRows<bf16>(const bf16*, int64_t, int64_t, const SamplingParams*,
                                      int32_t*, cudaStream_t);

}  // namespace glm4v::cuda
