#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise.h"

namespace glm4v::cuda {
namespace {

constexpr int kThreads = 256;

// Enough blocks to fill the GPU a few times over; the kernels grid-stride past that.
unsigned GridFor(int64_t work) {
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65536 ? 65536 : blocks));
}

__device__ __forceinline__ float GeluF(float x) {
  return 0.5f * x * (1.f + erff(x * 0.70710678118654752440f));
}
__device__ __forceinline__ float SiluF(float x) { return x / (1.f + expf(-x)); }

// Vector path: n_vec packs of 16 bytes, then a scalar tail.
template <typename T>
__global__ void GeluKernel(const T* x, T* y, int64_t n) {
  constexpr int V = Pack<T>::kSize;
  const int64_t n_vec = n / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < n_vec; i += stride) {
    Pack<T> p = LoadPack(x + i * V);
#pragma unroll
    for (int j = 0; j < V; ++j) p.v[j] = FromFloat<T>(GeluF(ToFloat(p.v[j])));
    StorePack(y + i * V, p);
  }
  for (int64_t i = n_vec * V + tid; i < n; i += stride) y[i] = FromFloat<T>(GeluF(ToFloat(x[i])));
}

template <typename T>
__global__ void GeluScalarKernel(const T* x, T* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = FromFloat<T>(GeluF(ToFloat(x[i])));
}

template <typename T, bool kVec>
__global__ void SiluAndMulKernel(const T* x, T* y, int64_t rows, int64_t half) {
  constexpr int V = kVec ? Pack<T>::kSize : 1;
  const int64_t per_row = half / V;
  const int64_t total = rows * per_row;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t r = i / per_row, c = (i % per_row) * V;
    const T* a = x + r * 2 * half + c;
    const T* b = a + half;
    T* out = y + r * half + c;
    if constexpr (kVec) {
      Pack<T> pa = LoadPack(a), pb = LoadPack(b), po;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        po.v[j] = FromFloat<T>(SiluF(ToFloat(pa.v[j])) * ToFloat(pb.v[j]));
      }
      StorePack(out, po);
    } else {
      *out = FromFloat<T>(SiluF(ToFloat(*a)) * ToFloat(*b));
    }
  }
}

template <typename T>
__global__ void AddKernel(const T* x, T* acc, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    acc[i] = FromFloat<T>(ToFloat(acc[i]) + ToFloat(x[i]));
}

template <typename T>
__global__ void AddVecKernel(const T* x, T* acc, int64_t n_vec) {
  constexpr int V = Pack<T>::kSize;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_vec;
       i += stride) {
    Pack<T> a = LoadPack(acc + i * V), b = LoadPack(x + i * V);
#pragma unroll
    for (int j = 0; j < V; ++j) a.v[j] = FromFloat<T>(ToFloat(a.v[j]) + ToFloat(b.v[j]));
    StorePack(acc + i * V, a);
  }
}

template <typename T>
__global__ void AddPeriodicRowsKernel(const T* table, int64_t period, T* acc, int64_t rows,
                                      int64_t cols) {
  const int64_t total = rows * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t r = i / cols, c = i % cols;
    acc[i] = FromFloat<T>(ToFloat(acc[i]) + ToFloat(table[(r % period) * cols + c]));
  }
}

template <typename T>
__global__ void ScaleKernel(T* x, int64_t n, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    x[i] = FromFloat<T>(ToFloat(x[i]) * scale);
}

template <typename From, typename To>
__global__ void ConvertKernel(const From* x, To* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = FromFloat<To>(ToFloat(x[i]));
}

// One block per output row; 16-byte copies when the row allows it.
template <typename T>
__global__ void GatherRowsKernel(const T* table, int64_t table_rows, int64_t cols,
                                 const int32_t* ids, T* out) {
  const int64_t r = blockIdx.x;
  const int32_t id = ids[r];
  T* dst = out + r * cols;
  const bool valid = id >= 0 && id < table_rows;
  const T* src = table + (valid ? static_cast<int64_t>(id) : 0) * cols;
  constexpr int V = Pack<T>::kSize;
  if (cols % V == 0 && IsAligned16(src) && IsAligned16(dst)) {
    for (int64_t c = threadIdx.x; c < cols / V; c += blockDim.x) {
      Pack<T> p;
      if (valid) {
        p = LoadPack(src + c * V);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) p.v[j] = FromFloat<T>(0.f);
      }
      StorePack(dst + c * V, p);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      dst[c] = valid ? src[c] : FromFloat<T>(0.f);
  }
}

// Thread per output element, written in output order (coalesced stores).
template <typename T>
__global__ void PatchIm2ColKernel(const T* image, bool channels_last, int64_t batch, int64_t c,
                                  int64_t h, int64_t w, int k, T* cols) {
  const int64_t ph = h / k, pw = w / k;
  const int64_t row_len = c * k * k;
  const int64_t total = batch * ph * pw * row_len;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int64_t row = i / row_len, col = i % row_len;
    const int64_t b = row / (ph * pw), py = (row / pw) % ph, px = row % pw;
    const int64_t ch = col / (k * k), ky = (col / k) % k, kx = col % k;
    const int64_t y = py * k + ky, x = px * k + kx;
    const int64_t src = channels_last ? ((b * h + y) * w + x) * c + ch
                                      : ((b * c + ch) * h + y) * w + x;
    cols[i] = image[src];
  }
}

template <typename T>
__global__ void FillUniformKernel(T* x, int64_t n, uint64_t seed, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    uint64_t z = seed + (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (2.f / 16777216.f) - 1.f;
    x[i] = FromFloat<T>(scale * u);
  }
}

}  // namespace

template <typename T>
cudaError_t FillUniform(T* x, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  FillUniformKernel<T><<<GridFor(n), kThreads, 0, stream>>>(x, n, seed, scale);
  return cudaGetLastError();
}

template <typename T>
cudaError_t Gelu(const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  if (IsAligned16(x) && IsAligned16(y)) {
    GeluKernel<T><<<GridFor(n / Pack<T>::kSize + 1), kThreads, 0, stream>>>(x, y, n);
  } else {
    GeluScalarKernel<T><<<GridFor(n), kThreads, 0, stream>>>(x, y, n);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t SiluAndMul(const T* x, T* y, int64_t rows, int64_t half, cudaStream_t stream) {
  if (rows <= 0 || half <= 0) return cudaSuccess;
  constexpr int V = Pack<T>::kSize;
  if (half % V == 0 && IsAligned16(x) && IsAligned16(y)) {
    SiluAndMulKernel<T, true><<<GridFor(rows * half / V), kThreads, 0, stream>>>(x, y, rows, half);
  } else {
    SiluAndMulKernel<T, false><<<GridFor(rows * half), kThreads, 0, stream>>>(x, y, rows, half);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t Add(const T* x, T* acc, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  constexpr int V = Pack<T>::kSize;
  if (n % V == 0 && IsAligned16(x) && IsAligned16(acc)) {
    AddVecKernel<T><<<GridFor(n / V), kThreads, 0, stream>>>(x, acc, n / V);
  } else {
    AddKernel<T><<<GridFor(n), kThreads, 0, stream>>>(x, acc, n);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t AddPeriodicRows(const T* table, int64_t period, T* acc, int64_t rows, int64_t cols,
                            cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (period <= 0) return cudaErrorInvalidValue;
  AddPeriodicRowsKernel<T><<<GridFor(rows * cols), kThreads, 0, stream>>>(table, period, acc,
                                                                          rows, cols);
  return cudaGetLastError();
}

template <typename T>
cudaError_t Scale(T* x, int64_t n, float scale, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  ScaleKernel<T><<<GridFor(n), kThreads, 0, stream>>>(x, n, scale);
  return cudaGetLastError();
}

cudaError_t F32ToBF16(const float* x, bf16* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  ConvertKernel<float, bf16><<<GridFor(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t BF16ToF32(const bf16* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  ConvertKernel<bf16, float><<<GridFor(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

template <typename T>
cudaError_t GatherRows(const T* table, int64_t table_rows, int64_t cols, const int32_t* ids,
                       int64_t rows, T* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  if (rows > 0x7fffffff) return cudaErrorInvalidValue;
  GatherRowsKernel<T><<<static_cast<unsigned>(rows), 256, 0, stream>>>(table, table_rows, cols,
                                                                       ids, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t PatchIm2Col(const T* image, bool channels_last, int64_t batch, int64_t channels,
                        int64_t height, int64_t width, int kernel, T* cols, cudaStream_t stream) {
  if (kernel <= 0 || height % kernel != 0 || width % kernel != 0) return cudaErrorInvalidValue;
  const int64_t total = batch * channels * height * width;
  if (total <= 0) return cudaSuccess;
  PatchIm2ColKernel<T><<<GridFor(total), kThreads, 0, stream>>>(
      image, channels_last, batch, channels, height, width, kernel, cols);
  return cudaGetLastError();
}

#define GLM4V_INSTANTIATE(T)                                                                    \
  template cudaError_t Gelu<T>(const T*, T*, int64_t, cudaStream_t);                            \
  template cudaError_t SiluAndMul<T>(const T*, T*, int64_t, int64_t, cudaStream_t);             \
  template cudaError_t Add<T>(const T*, T*, int64_t, cudaStream_t);                             \
  template cudaError_t AddPeriodicRows<T>(const T*, int64_t, T*, int64_t, int64_t,              \
                                          cudaStream_t);                                        \
  template cudaError_t Scale<T>(T*, int64_t, float, cudaStream_t);                              \
  template cudaError_t GatherRows<T>(const T*, int64_t, int64_t, const int32_t*, int64_t, T*,   \
                                     cudaStream_t);                                             \
  template cudaError_t PatchIm2Col<T>(const T*, bool, int64_t, int64_t, int64_t, int64_t, int, \
                                      T*, cudaStream_t);                                        \
  template cudaError_t FillUniform<T>(T*, int64_t, uint64_t, float, cudaStream_t);
GLM4V_INSTANTIATE(float)
GLM4V_INSTANTIATE(bf16)
#undef GLM4V_INSTANTIATE

}  // namespace glm4v::cuda
