#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/rope.h"

namespace glm4v::cuda {
namespace {

constexpr int kMaxPairs = 256;  // rotary_dim <= 512

// cos/sin of the row's rotary pairs into shared memory (one double sincos per pair per row,
// shared by all heads).
__device__ __forceinline__ void RowAngles(int32_t position, int pairs, int rotary_dim,
                                          double log_base, float* cos_s, float* sin_s) {
  for (int j = threadIdx.x; j < pairs; j += blockDim.x) {
    const double inv_freq = exp(-(2.0 * j / rotary_dim) * log_base);
    double s, c;
    sincos(static_cast<double>(position) * inv_freq, &s, &c);
    cos_s[j] = static_cast<float>(c);
    sin_s[j] = static_cast<float>(s);
  }
}

template <typename T>
__device__ __forceinline__ void RotateHeads(T* x, int num_heads, int head_dim, int pairs,
                                            const float* cos_s, const float* sin_s) {
  for (int i = threadIdx.x; i < num_heads * pairs; i += blockDim.x) {
    const int h = i / pairs, j = i % pairs;
    T* e = x + h * head_dim + 2 * j;
    const float x0 = ToFloat(e[0]), x1 = ToFloat(e[1]);
    e[0] = FromFloat<T>(x0 * cos_s[j] - x1 * sin_s[j]);
    e[1] = FromFloat<T>(x1 * cos_s[j] + x0 * sin_s[j]);
  }
}

template <typename T>
__global__ void RopeKernel(T* x, int64_t row_stride, const int32_t* positions, int num_heads,
                           int head_dim, int rotary_dim, double log_base) {
  __shared__ float cos_s[kMaxPairs], sin_s[kMaxPairs];
  const int64_t row = blockIdx.x;
  const int pairs = rotary_dim / 2;
  RowAngles(positions[row], pairs, rotary_dim, log_base, cos_s, sin_s);
  __syncthreads();
  RotateHeads(x + row * row_stride, num_heads, head_dim, pairs, cos_s, sin_s);
}

template <typename T, typename C>
__global__ void WriteKvKernel(const T* k, const T* v, int64_t row_stride, int64_t width,
                              const int32_t* slots, C* k_cache, C* v_cache) {
  const int64_t row = blockIdx.x;
  const int32_t slot = slots[row];
  if (slot < 0) return;
  const T* kr = k + row * row_stride;
  const T* vr = v + row * row_stride;
  C* kc = k_cache + static_cast<int64_t>(slot) * width;
  C* vc = v_cache + static_cast<int64_t>(slot) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    kc[c] = FromFloat<C>(ToFloat(kr[c]));
    vc[c] = FromFloat<C>(ToFloat(vr[c]));
  }
}

template <typename T>
__global__ void RopeAndWriteKvKernel(T* qkv, const int32_t* positions, const int32_t* slots,
                                     int num_heads, int num_kv_heads, int head_dim,
                                     int rotary_dim, double log_base, T* k_cache, T* v_cache) {
  __shared__ float cos_s[kMaxPairs], sin_s[kMaxPairs];
  const int64_t row = blockIdx.x;
  const int pairs = rotary_dim / 2;
  const int64_t q_width = static_cast<int64_t>(num_heads) * head_dim;
  const int64_t kv_width = static_cast<int64_t>(num_kv_heads) * head_dim;
  T* q = qkv + row * (q_width + 2 * kv_width);
  const T* k = q + q_width;
  const T* v = k + kv_width;
  RowAngles(positions[row], pairs, rotary_dim, log_base, cos_s, sin_s);
  __syncthreads();
  RotateHeads(q, num_heads, head_dim, pairs, cos_s, sin_s);
  const int32_t slot = slots[row];
  if (slot < 0) return;
  T* kc = k_cache + static_cast<int64_t>(slot) * kv_width;
  T* vc = v_cache + static_cast<int64_t>(slot) * kv_width;
  // K is rotated on the way into the cache; the qkv buffer's k part is left as it was.
  for (int64_t c = threadIdx.x; c < kv_width; c += blockDim.x) {
    const int d = static_cast<int>(c % head_dim);
    float out;
    if (d < rotary_dim) {
      const int j = d / 2;
      const int64_t even = c - (d & 1);
      const float x0 = ToFloat(k[even]), x1 = ToFloat(k[even + 1]);
      out = (d & 1) == 0 ? x0 * cos_s[j] - x1 * sin_s[j] : x1 * cos_s[j] + x0 * sin_s[j];
    } else {
      out = ToFloat(k[c]);
    }
    kc[c] = FromFloat<T>(out);
    vc[c] = v[c];
  }
}

int Threads(int64_t work) { return work >= 256 ? 256 : (work > 64 ? 128 : 64); }

bool ValidRope(const RopeParams& p) {
  return p.head_dim > 0 && p.rotary_dim >= 0 && p.rotary_dim <= p.head_dim &&
         p.rotary_dim % 2 == 0 && p.rotary_dim / 2 <= kMaxPairs && p.base > 0 && p.num_heads > 0;
}

}  // namespace

template <typename T>
cudaError_t ApplyRope(T* x, int64_t row_stride, int64_t rows, const int32_t* positions,
                      const RopeParams& p, cudaStream_t stream) {
  if (!ValidRope(p) || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows <= 0 || p.rotary_dim == 0) return cudaSuccess;
  RopeKernel<T><<<static_cast<unsigned>(rows), Threads(int64_t{p.num_heads} * p.rotary_dim / 2),
                  0, stream>>>(x, row_stride, positions, p.num_heads, p.head_dim, p.rotary_dim,
                               log(p.base));
  return cudaGetLastError();
}

template <typename T, typename C>
cudaError_t WriteKvCache(const T* k, const T* v, int64_t row_stride, int64_t rows, int64_t width,
                         const int32_t* slots, C* k_cache, C* v_cache, cudaStream_t stream) {
  if (rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows <= 0 || width <= 0) return cudaSuccess;
  WriteKvKernel<T, C><<<static_cast<unsigned>(rows), Threads(width), 0, stream>>>(
      k, v, row_stride, width, slots, k_cache, v_cache);
  return cudaGetLastError();
}

template <typename T>
cudaError_t RopeAndWriteKv(T* qkv, int64_t rows, const int32_t* positions, const int32_t* slots,
                           const RopeParams& p, int num_kv_heads, T* k_cache, T* v_cache,
                           cudaStream_t stream) {
  if (!ValidRope(p) || num_kv_heads <= 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows <= 0) return cudaSuccess;
  RopeAndWriteKvKernel<T><<<static_cast<unsigned>(rows), 256, 0, stream>>>(
      qkv, positions, slots, p.num_heads, num_kv_heads, p.head_dim, p.rotary_dim, log(p.base),
      k_cache, v_cache);
  return cudaGetLastError();
}

template cudaError_t ApplyRope<float>(float*, int64_t, int64_t, const int32_t*, const RopeParams&,
                                      cudaStream_t);
template cudaError_t ApplyRope<bf16>(bf16*, int64_t, int64_t, const int32_t*, const RopeParams&,
                                     cudaStream_t);
template cudaError_t WriteKvCache<float, float>(const float*, const float*, int64_t, int64_t,
                                                int64_t, const int32_t*, float*, float*,
                                                cudaStream_t);
template cudaError_t WriteKvCache<float, bf16>(const float*, const float*, int64_t, int64_t,
                                               int64_t, const int32_t*, bf16*, bf16*,
                                               cudaStream_t);
template cudaError_t WriteKvCache<bf16, bf16>(const bf16*, const bf16*, int64_t, int64_t, int64_t,
                                              const int32_t*, bf16*, bf16*, cudaStream_t);
template cudaError_t WriteKvCache<bf16, float>(const bf16*, const bf16*, int64_t, int64_t,
                                               int64_t, const int32_t*, float*, float*,
                                               cudaStream_t);
template cudaError_t RopeAndWriteKv<float>(float*, int64_t, const int32_t*, const int32_t*,
                                           const RopeParams&, int, float*, float*, cudaStream_t);
template cudaError_t RopeAndWriteKv<bf16>(bf16*, int64_t, const int32_t*, const int32_t*,
                                          const RopeParams&, int, bf16*, bf16*, cudaStream_t);

}  // namespace glm4v::cuda
