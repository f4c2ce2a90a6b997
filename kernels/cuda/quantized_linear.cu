#include "kernels/cuda/quantized_linear.h"

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "kernels/cuda/device_utils.cuh"

namespace glm4v::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kInt4Group = 128, kInt4Block = 32;

// e4m3 bits -> 2^-8 times the value, exactly (the half trick of kernels/fp8_e4m3.h).
__device__ __forceinline__ float Fp8Scaled(uint32_t b) {
  const unsigned short h = static_cast<unsigned short>(((b & 0x80u) << 8) | ((b & 0x7fu) << 7));
  return __half2float(__ushort_as_half(h));
}
constexpr float kFp8HalfScale = 256.0f;

// One byte-per-value weight row (int8 or fp8) against M rows of x. A lane takes 16 consecutive
// bytes per step (one 16-byte load when rows are 16-byte aligned: k % 16 == 0).
template <typename T, int M, bool kFp8>
__device__ void BytesRowDot(const T* __restrict__ x, int64_t k, const uint8_t* __restrict__ row,
                            float acc[M]) {
  const int lane = threadIdx.x % kWarp;
  if (k % 16 == 0) {
    for (int64_t t0 = int64_t{lane} * 16; t0 < k; t0 += kWarp * 16) {
      const uint4 packed = __ldg(reinterpret_cast<const uint4*>(row + t0));
      const uint32_t words[4] = {packed.x, packed.y, packed.z, packed.w};
      float w[16];
#pragma unroll
      for (int b = 0; b < 16; ++b) {
        const uint32_t byte = (words[b / 4] >> (8 * (b % 4))) & 0xffu;
        w[b] = kFp8 ? Fp8Scaled(byte) : static_cast<float>(static_cast<int8_t>(byte));
      }
#pragma unroll
      for (int i = 0; i < M; ++i) {
        const T* xi = x + i * k + t0;
        float s = 0.f;
#pragma unroll
        for (int b = 0; b < 16; ++b) s += ToFloat(xi[b]) * w[b];
        acc[i] += s;
      }
    }
    return;
  }
  for (int64_t t = lane; t < k; t += kWarp) {
    const uint32_t byte = row[t];
    const float w = kFp8 ? Fp8Scaled(byte) : static_cast<float>(static_cast<int8_t>(byte));
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] += ToFloat(x[i * k + t]) * w;
  }
}

// One int4 row: a lane takes one 16-byte block (32 values) per step; the group's scale and zero
// point apply per block (a block never straddles groups: 128 = 4 x 32).
template <typename T, int M>
__device__ void Int4RowDot(const T* __restrict__ x, int64_t k, const uint8_t* __restrict__ row,
                           const float* __restrict__ scales, const uint8_t* __restrict__ zeros,
                           float acc[M]) {
  const int lane = threadIdx.x % kWarp;
  const int64_t blocks = (k + kInt4Block - 1) / kInt4Block;
  for (int64_t blk = lane; blk < blocks; blk += kWarp) {
    const int64_t t0 = blk * kInt4Block, g = t0 / kInt4Group;
    const float scale = scales[g], zero = static_cast<float>(zeros[g]);
    const uint4 packed = __ldg(reinterpret_cast<const uint4*>(row + blk * 16));
    const uint32_t words[4] = {packed.x, packed.y, packed.z, packed.w};
    float w[32];
#pragma unroll
    for (int b = 0; b < 16; ++b) {
      const uint32_t byte = (words[b / 4] >> (8 * (b % 4))) & 0xffu;
      w[b] = static_cast<float>(byte & 15u) - zero;
      w[16 + b] = static_cast<float>(byte >> 4) - zero;
    }
    const bool full = t0 + kInt4Block <= k;
#pragma unroll
    for (int i = 0; i < M; ++i) {
      const T* xi = x + i * k + t0;
      float s = 0.f;
      if (full) {
#pragma unroll
        for (int v = 0; v < 32; ++v) s += ToFloat(xi[v]) * w[v];
      } else {
        for (int v = 0; t0 + v < k; ++v) s += ToFloat(xi[v]) * w[v];
      }
      acc[i] += scale * s;
    }
  }
}

// A warp per weight row; the row's bytes come from memory once and stay in L1/L2 while the
// warp walks `tiles` tiles of M rows of x.
template <typename T, int M>
__global__ void QuantizedGemvKernel(const T* __restrict__ x, int64_t tiles, QuantizedWeightView w,
                                    const T* __restrict__ bias, bool accumulate,
                                    T* __restrict__ y) {
  const int64_t j = int64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / kWarp;
  if (j >= w.n) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t groups = (w.k + kInt4Group - 1) / kInt4Group;
  const int64_t int4_row_bytes = (w.k + kInt4Block - 1) / kInt4Block * 16;
  float row_scale = 1.f;
  if (w.format == QuantizedFormat::kFp8) row_scale = w.scales[j] * kFp8HalfScale;
  if (w.format == QuantizedFormat::kInt8) row_scale = w.scales[j];
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const T* xt = x + tile * M * w.k;
    T* yt = y + tile * M * w.n;
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; ++i) acc[i] = 0.f;
    if (w.format == QuantizedFormat::kInt4) {
      Int4RowDot<T, M>(xt, w.k, w.values + j * int4_row_bytes, w.scales + j * groups,
                       w.zeros + j * groups, acc);
    } else if (w.format == QuantizedFormat::kFp8) {
      BytesRowDot<T, M, true>(xt, w.k, w.values + j * w.k, acc);
    } else {
      BytesRowDot<T, M, false>(xt, w.k, w.values + j * w.k, acc);
    }
#pragma unroll
    for (int i = 0; i < M; ++i) {
      const float s = WarpSum(acc[i]);
      if (lane == 0) {
        float v = row_scale * s + (bias != nullptr ? ToFloat(bias[j]) : 0.f);
        if (accumulate) v += ToFloat(yt[i * w.n + j]);
        yt[i * w.n + j] = FromFloat<T>(v);
      }
    }
  }
}

template <typename T, int M>
cudaError_t LaunchGemv(const T* x, int64_t tiles, const QuantizedWeightView& w, const T* bias,
                       bool accumulate, T* y, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((w.n + kWarpsPerBlock - 1) / kWarpsPerBlock);
  QuantizedGemvKernel<T, M><<<blocks, kWarpsPerBlock * kWarp, 0, stream>>>(x, tiles, w, bias,
                                                                           accumulate, y);
  return cudaGetLastError();
}

template <typename T>
__global__ void DequantizeRowsKernel(QuantizedWeightView w, int64_t r_begin, int64_t rows,
                                     T* __restrict__ out) {
  const int64_t total = rows * w.k;
  for (int64_t idx = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = r_begin + idx / w.k, t = idx % w.k;
    float v;
    if (w.format == QuantizedFormat::kInt4) {
      const int64_t groups = (w.k + kInt4Group - 1) / kInt4Group;
      const int64_t row_bytes = (w.k + kInt4Block - 1) / kInt4Block * 16;
      const uint8_t byte = w.values[r * row_bytes + t / 32 * 16 + t % 16];
      const int q = (t % 32) < 16 ? (byte & 15) : (byte >> 4);
      const int64_t g = r * groups + t / kInt4Group;
      v = w.scales[g] * static_cast<float>(q - static_cast<int>(w.zeros[g]));
    } else if (w.format == QuantizedFormat::kFp8) {
      v = w.scales[r] * (Fp8Scaled(w.values[r * w.k + t]) * kFp8HalfScale);
    } else {
      v = w.scales[r] * static_cast<float>(static_cast<int8_t>(w.values[r * w.k + t]));
    }
    out[idx] = FromFloat<T>(v);
  }
}

// One block per row: amax by block reduction, then the row's values saturated to e4m3.
template <typename T>
__global__ void QuantizeRowsToFp8Kernel(const T* __restrict__ x, int64_t k,
                                        uint8_t* __restrict__ q, float* __restrict__ scale) {
  const T* xr = x + int64_t{blockIdx.x} * k;
  float amax = 0.f;
  for (int64_t t = threadIdx.x; t < k; t += blockDim.x) {
    amax = fmaxf(amax, fabsf(ToFloat(xr[t])));
  }
  __shared__ float scratch[32];
  amax = BlockMax(amax, scratch);
  const float s = amax > 0.f ? amax / 448.f : 1.f;
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
  const float inv = 1.f / s;
  uint8_t* qr = q + int64_t{blockIdx.x} * k;
  for (int64_t t = threadIdx.x; t < k; t += blockDim.x) {
    qr[t] = static_cast<uint8_t>(
        __nv_cvt_float_to_fp8(ToFloat(xr[t]) * inv, __NV_SATFINITE, __NV_E4M3));
  }
}

}  // namespace

template <typename T>
cudaError_t QuantizedGemv(const T* x, int64_t m, const QuantizedWeightView& w, const T* bias,
                          bool accumulate, T* y, cudaStream_t stream) {
  if (m <= 0 || w.n <= 0) return cudaSuccess;
  if (m > kQuantizedGemvMaxRows) return cudaErrorInvalidValue;
  // Whole tiles of 8 rows, then the remaining rows in one more launch.
  const int64_t tiles = m / 8, rest = m % 8;
  if (tiles > 0) {
    const cudaError_t e = LaunchGemv<T, 8>(x, tiles, w, bias, accumulate, y, stream);
    if (e != cudaSuccess || rest == 0) return e;
  }
  const T* xr = x + tiles * 8 * w.k;
  T* yr = y + tiles * 8 * w.n;
  switch (rest) {
    case 1: return LaunchGemv<T, 1>(xr, 1, w, bias, accumulate, yr, stream);
    case 2: return LaunchGemv<T, 2>(xr, 1, w, bias, accumulate, yr, stream);
    case 3: return LaunchGemv<T, 3>(xr, 1, w, bias, accumulate, yr, stream);
    case 4: return LaunchGemv<T, 4>(xr, 1, w, bias, accumulate, yr, stream);
    case 5: return LaunchGemv<T, 5>(xr, 1, w, bias, accumulate, yr, stream);
    case 6: return LaunchGemv<T, 6>(xr, 1, w, bias, accumulate, yr, stream);
    default: return LaunchGemv<T, 7>(xr, 1, w, bias, accumulate, yr, stream);
  }
}

template <typename T>
cudaError_t DequantizeRows(const QuantizedWeightView& w, int64_t r_begin, int64_t r_end, T* out,
                           cudaStream_t stream) {
  const int64_t total = (r_end - r_begin) * w.k;
  if (total <= 0) return cudaSuccess;
  const int threads = 256;
  const int64_t want = (total + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(want < 65535 * 8 ? want : 65535 * 8);
  DequantizeRowsKernel<T><<<blocks, threads, 0, stream>>>(w, r_begin, r_end - r_begin, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t QuantizeRowsToFp8(const T* x, int64_t m, int64_t k, uint8_t* q, float* scale,
                              cudaStream_t stream) {
  if (m <= 0 || k <= 0) return cudaSuccess;
  QuantizeRowsToFp8Kernel<T><<<static_cast<unsigned>(m), 256, 0, stream>>>(x, k, q, scale);
  return cudaGetLastError();
}

#define GLM4V_INSTANTIATE(T)                                                                     \
  template cudaError_t QuantizedGemv<T>(const T*, int64_t, const QuantizedWeightView&, const T*, \
                                        bool, T*, cudaStream_t);                                 \
  template cudaError_t DequantizeRows<T>(const QuantizedWeightView&, int64_t, int64_t, T*,       \
                                         cudaStream_t);                                          \
  template cudaError_t QuantizeRowsToFp8<T>(const T*, int64_t, int64_t, uint8_t*, float*,        \
                                            cudaStream_t);
GLM4V_INSTANTIATE(float)
GLM4V_INSTANTIATE(__nv_bfloat16)
#undef GLM4V_INSTANTIATE

}  // namespace glm4v::cuda
