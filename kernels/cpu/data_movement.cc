// Dtype conversions, column splits, row gathers and patch extraction (im2col for kernel ==
// stride convolutions).
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {

void ConvertToF32(const void* src, DType dtype, int64_t n, float* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
}

void ConvertFromF32(const float* src, int64_t n, DType dtype, void* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
}

void CopyColumns(const float* x, int64_t rows, int64_t x_cols, int64_t col_begin, int64_t width,
                 float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(y + r * width, x + r * x_cols + col_begin, width * sizeof(float));
  }
}

void GatherRows(const void* table, DType table_dtype, int64_t cols, const int32_t* rows,
                int64_t n, float* out) {
  const auto* base = static_cast<const unsigned char*>(table);
  const size_t row_bytes = cols * DTypeSize(table_dtype);
  for (int64_t i = 0; i < n; ++i) {
    ConvertToF32(base + rows[i] * row_bytes, table_dtype, cols, out + i * cols);
  }
}

void PatchIm2Col(const float* image, int64_t batch, int64_t channels, int64_t height,
                 int64_t width, ImageLayout layout, int kernel, float* cols) {
  const int64_t gh = height / kernel, gw = width / kernel;
  const int64_t row_len = channels * kernel * kernel;
  ParallelFor(batch * gh, gw * row_len, [&](int64_t bp) {
    const int64_t b = bp / gh, py = bp % gh;
    for (int64_t px = 0; px < gw; ++px) {
      float* out = cols + ((b * gh + py) * gw + px) * row_len;
      for (int64_t c = 0; c < channels; ++c) {
        for (int ky = 0; ky < kernel; ++ky) {
          const int64_t iy = py * kernel + ky;
          for (int kx = 0; kx < kernel; ++kx) {
            const int64_t ix = px * kernel + kx;
            const int64_t src = layout == ImageLayout::kChannelsFirst
                                    ? ((b * channels + c) * height + iy) * width + ix
                                    : ((b * height + iy) * width + ix) * channels + c;
            out[(c * kernel + ky) * kernel + kx] = image[src];
          }
        }
      }
    }
  });
}

void Argmax(const float* x, int64_t rows, int64_t cols, int32_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    int64_t best = 0;
    for (int64_t i = 1; i < cols; ++i) {
      if (xr[i] > xr[best]) best = i;
    }
    out[r] = static_cast<int32_t>(best);
  }
}

}  // namespace cpu
}  // namespace glm4v
