// y = x W^T + b with W stored [out, in] (HF Linear layout): f32 weights through OpenBLAS sgemm,
// bf16 ones read in place (matmul_bf16.h; opt-in bf16 activations through oneDNN,
// onednn_matmul.h), f16 ones as converted panels + sgemm.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/dequantize_weights.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/matmul_fp8.h"
#include "kernels/cpu/matmul_quantized.h"
#include "kernels/cpu/matmul_quantized_vnni.h"
#include "kernels/cpu/onednn_matmul.h"
#include "kernels/cpu/parallel.h"

namespace glm4v {
namespace cpu {
namespace {

// f32 elements of one converted weight panel: 1 MiB for few rows of x (stays in cache between
// its conversion and the sgemm that reads it), up to 16 MiB for many (wider sgemm calls).
// Rows of x per oneDNN call on the bf16-activation path.
constexpr int64_t kOneDnnRowBlock = 1024;

int64_t PanelFloats(int64_t m) {
  return (int64_t{1} << 18) * std::min<int64_t>(16, std::max<int64_t>(1, m / 4));
}

// Prepares y for the sgemm: seeds it with the bias (added onto y when accumulating). Returns
// the sgemm's beta (1 when y already holds something to add onto).
float SeedOutput(const float* bias, int64_t m, int64_t n, bool accumulate, float* y) {
  if (bias == nullptr) return accumulate ? 1.0f : 0.0f;
  for (int64_t i = 0; i < m; ++i) {
    float* yi = y + i * n;
    if (accumulate) {
      for (int64_t j = 0; j < n; ++j) yi[j] += bias[j];
    } else {
      std::memcpy(yi, bias, n * sizeof(float));
    }
  }
  return 1.0f;
}

// y[:, col : col + n_cols] = x w^T + beta * y (w: [n_cols, k] f32; y rows are ldy apart).
void Sgemm(const float* x, const float* w, int64_t m, int64_t n_cols, int64_t k, float beta,
           float* y, int64_t ldy) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
              static_cast<int>(n_cols), static_cast<int>(k), 1.0f, x, static_cast<int>(k), w,
              static_cast<int>(k), beta, y, static_cast<int>(ldy));
}

// bf16 weights read in place, widened in registers: the rows of x in blocks that stay in
// cache, each block against every weight row (chunks of weight rows spread over the pool).
// Opt-in: large products round x to bf16 and multiply bf16 pairs, through oneDNN where it has
// a JIT kernel for this CPU, else our own AVX-512 BF16 block.
void LinearBf16(const float* x, const uint16_t* w, int64_t m, int64_t n, int64_t k,
                bool accumulate, float* y) {
  constexpr int64_t kRowsPerItem = 64;
  const bool bf16_dot =
      m >= kBf16ActivationMinRows && Bf16ActivationMatmulEnabled() && CpuHasBf16Dot();
  const bool onednn = bf16_dot && m >= kOneDnnMinRows && OneDnnMatmulEnabled();
  // oneDNN takes larger row blocks (its own blocking inside); the bf16 copy of a block of x
  // stays under ~32 MB at the vision MLP's k = 15,360.
  const int64_t row_block = onednn ? kOneDnnRowBlock : kMatmulBf16RowBlock;
  thread_local std::vector<uint16_t> x_bf16;
  for (int64_t i0 = 0; i0 < m; i0 += row_block) {
    const int64_t rows = std::min(row_block, m - i0);
    float* const yi = y + i0 * n;
    if (!bf16_dot) {
      ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * rows * 2,
                  [&](int64_t c) {
                    const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
                    MatmulBf16(x + i0 * k, rows, w, k, j0, j1, accumulate, yi, n);
                  });
      continue;
    }
    x_bf16.resize(rows * k);
    uint16_t* const xb = x_bf16.data();  // pool threads must see this thread's buffer
    ParallelFor(rows, k, [&](int64_t r) {
      ConvertFromF32(x + (i0 + r) * k, k, DType::kBF16, xb + r * k);
    });
    if (onednn && OneDnnMatmulBf16(xb, rows, w, k, n, accumulate, yi, n)) continue;
    ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * rows * 2,
                [&](int64_t c) {
                  const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
                  MatmulBf16Dot(xb, rows, w, k, j0, j1, accumulate, yi, n);
                });
  }
}

}  // namespace

void Linear(const float* x, const void* w, DType w_dtype, const float* bias, int64_t m,
            int64_t n, int64_t k, bool accumulate, float* y) {
  if (m == 0 || n == 0) return;
  const float beta = SeedOutput(bias, m, n, accumulate, y);
  if (k == 0) {
    if (beta == 0.0f) std::memset(y, 0, m * n * sizeof(float));
    return;
  }
  if (w_dtype == DType::kF32) {
    Sgemm(x, static_cast<const float*>(w), m, n, k, beta, y, n);
    return;
  }
  if (w_dtype == DType::kBF16) {
    LinearBf16(x, static_cast<const uint16_t*>(w), m, n, k, beta != 0.0f, y);
    return;
  }
  // f16 weights: convert a panel of rows to f32 (in parallel), multiply it into its columns of
  // y, next panel. The scratch is per thread so concurrent callers do not share it.
  const int64_t panel_rows = std::min(n, std::max<int64_t>(16, PanelFloats(m) / k));
  thread_local std::vector<float> panel;
  if (static_cast<int64_t>(panel.size()) < panel_rows * k) panel.resize(panel_rows * k);
  float* const p = panel.data();
  const size_t elem = DTypeSize(w_dtype);
  const auto* wb = static_cast<const unsigned char*>(w);
  for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, n - r0);
    ParallelFor(rows, k, [&](int64_t r) {
      ConvertToF32(wb + (r0 + r) * k * elem, w_dtype, k, p + r * k);
    });
    Sgemm(x, p, m, rows, k, beta, y + r0, n);
  }
}

namespace {

// Opt-in bf16 activations with int8 / int4 weights (prefill, vision): x rounded to bf16 once,
// the weights dequantized to bf16 one panel of rows at a time, each panel multiplied into its
// columns of y by oneDNN (or our vdpbf16ps block).
void LinearQuantizedBf16(const float* x, const LinearWeight& w, int64_t m, bool add, float* y) {
  const int64_t n = w.out_features(), k = w.in;
  // Panels of ~16 MB of bf16: wide enough for oneDNN to run near its peak, few enough calls.
  const int64_t panel_rows = std::max<int64_t>(64, (int64_t{8} << 20) / k);
  constexpr int64_t kRowsPerItem = 64;
  thread_local std::vector<uint16_t> x_bf16, panel;
  x_bf16.resize(m * k);
  panel.resize(std::min(panel_rows, n) * k);
  uint16_t* const xb = x_bf16.data();  // pool threads must see this thread's buffers
  uint16_t* const wb = panel.data();
  ParallelFor(m, k, [&](int64_t r) { ConvertFromF32(x + r * k, k, DType::kBF16, xb + r * k); });
  const bool onednn = m >= kOneDnnMinRows && OneDnnMatmulEnabled();
  for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, n - r0);
    DequantizeRowsToBf16(w, r0, r0 + rows, wb);
    if (onednn && OneDnnMatmulBf16(xb, m, wb, k, rows, add, y + r0, n)) continue;
    for (int64_t i0 = 0; i0 < m; i0 += kMatmulBf16RowBlock) {
      const int64_t xr = std::min(kMatmulBf16RowBlock, m - i0);
      ParallelFor((rows + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * xr * 2,
                  [&](int64_t c) {
                    const int64_t j0 = c * kRowsPerItem, j1 = std::min(rows, j0 + kRowsPerItem);
                    MatmulBf16Dot(xb + i0 * k, xr, wb, k, j0, j1, add, y + i0 * n + r0, n);
                  });
    }
  }
}

// fp8 weights with f32 x: decode-sized products widen the bytes in registers; larger ones
// dequantize f32 panels of rows for sgemm (the weights are read many times per call there).
void LinearFp8(const float* x, const LinearWeight& w, int64_t m, bool add, float* y) {
  const int64_t n = w.out_features(), k = w.in;
  const uint8_t* q = w.values.data<uint8_t>();
  const float* scales = w.scales.data<float>();
  constexpr int64_t kRowsPerItem = 64, kRegisterMaxRows = 16;
  if (m <= kRegisterMaxRows) {
    ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * m * 2, [&](int64_t c) {
      const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
      MatmulFp8(x, m, q, scales, k, j0, j1, add, y, n);
    });
    return;
  }
  const int64_t panel_rows = std::min(n, std::max<int64_t>(16, PanelFloats(m) / k));
  thread_local std::vector<float> panel;
  if (static_cast<int64_t>(panel.size()) < panel_rows * k) panel.resize(panel_rows * k);
  float* const p = panel.data();  // pool threads must see this thread's buffer
  for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, n - r0);
    ParallelFor(rows, k, [&](int64_t r) {
      DequantizeFp8Row(q + (r0 + r) * k, scales[r0 + r], k, p + r * k);
    });
    Sgemm(x, p, m, rows, k, add ? 1.0f : 0.0f, y + r0, n);
  }
}

}  // namespace

void LinearQuantized(const float* x, const LinearWeight& w, const float* bias, int64_t m,
                     bool accumulate, float* y) {
  const int64_t n = w.out_features(), k = w.in;
  if (m == 0 || n == 0) return;
  const bool add = SeedOutput(bias, m, n, accumulate, y) != 0.0f;
  if (m >= kBf16ActivationMinRows && Bf16ActivationMatmulEnabled() && CpuHasBf16Dot()) {
    LinearQuantizedBf16(x, w, m, add, y);
    return;
  }
  if (w.format == WeightFormat::kFp8) {
    LinearFp8(x, w, m, add, y);
    return;
  }
  constexpr int64_t kRowsPerItem = 64;
  const uint8_t* values = w.values.data<uint8_t>();
  const float* scales = w.scales.data<float>();
  const bool int8 = w.format == WeightFormat::kInt8;
  if (m <= kVnniMaxRows &&
      (int8 ? Int8ActivationProductsEnabled() : Int4ActivationProductsEnabled())) {
    // Decode: x rounded per block (int16 for int8 weights, int8 for int4), integer dot
    // products (matmul_quantized_vnni.h).
    const int64_t row_values = QuantizedRowBytes(k), blocks = row_values / kActivationBlock;
    thread_local std::vector<int16_t> x16;
    thread_local std::vector<int8_t> xq;
    thread_local std::vector<float> xs;
    thread_local std::vector<int32_t> xsum;
    xs.resize(m * blocks);
    float* const scales_x = xs.data();  // pool threads must see this thread's buffers
    if (int8) {
      x16.resize(m * row_values);
      const int16_t* const xv = x16.data();
      QuantizeActivationsInt16(x, m, k, x16.data(), scales_x);
      ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * m * 2,
                  [&](int64_t c) {
                    const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
                    MatmulInt8Vnni(xv, scales_x, m, reinterpret_cast<const int8_t*>(values),
                                   scales, k, j0, j1, add, y, n);
                  });
      return;
    }
    xq.resize(m * row_values);
    xsum.resize(m * blocks);
    const QuantizedRows rows{xq.data(), scales_x, xsum.data()};
    QuantizeActivations(x, m, k, /*int4_order=*/true, rows);
    ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * m * 2, [&](int64_t c) {
      const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
      MatmulInt4Dot(rows, m, values, scales, w.zeros.data<uint8_t>(), k, j0, j1, add, y, n);
    });
    return;
  }
  // f32 x against weights dequantized in registers: the rows of x in blocks that stay in
  // cache, chunks of weight rows over the pool (as the bf16 path).
  for (int64_t i0 = 0; i0 < m; i0 += kMatmulBf16RowBlock) {
    const int64_t rows = std::min(kMatmulBf16RowBlock, m - i0);
    const float* xi = x + i0 * k;
    float* const yi = y + i0 * n;
    ParallelFor((n + kRowsPerItem - 1) / kRowsPerItem, kRowsPerItem * k * rows * 2,
                [&](int64_t c) {
                  const int64_t j0 = c * kRowsPerItem, j1 = std::min(n, j0 + kRowsPerItem);
                  if (int8) {
                    MatmulInt8(xi, rows, reinterpret_cast<const int8_t*>(values), scales, k, j0,
                               j1, add, yi, n);
                  } else {
                    MatmulInt4(xi, rows, values, scales, w.zeros.data<uint8_t>(), k, j0, j1, add,
                               yi, n);
                  }
                });
  }
}

}  // namespace cpu
}  // namespace glm4v
