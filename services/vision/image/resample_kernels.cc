#include "services/vision/image/resample_kernels.h"

#include <emmintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/simd_level.h"

namespace glm4v {
namespace {

constexpr int kBand = kResampleBandRows;
constexpr int kRun = 255;  // vertical pass: values per run (a multiple of 3: whole pixels)
constexpr int32_t kHalf = 1 << (kResamplePrecisionBits - 1);

#define GLM4V_ALWAYS_INLINE inline __attribute__((always_inline))

// dst[j * dst_stride + i] = src[i * src_stride + j] for a 16x16 block of bytes (SSE2).
void Transpose16x16(const uint8_t* const* src_rows, size_t col, uint8_t* dst,
                    size_t dst_stride) {
  __m128i r[16], a[16], b[16], c[16];
  for (int i = 0; i < 16; ++i) {
    r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src_rows[i] + col));
  }
  for (int k = 0; k < 8; ++k) {  // bytes of row pairs
    a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
    a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
  }
  for (int q = 0; q < 4; ++q) {  // 16-bit pairs: rows 4q..4q+3
    b[4 * q + 0] = _mm_unpacklo_epi16(a[4 * q + 0], a[4 * q + 2]);
    b[4 * q + 1] = _mm_unpackhi_epi16(a[4 * q + 0], a[4 * q + 2]);
    b[4 * q + 2] = _mm_unpacklo_epi16(a[4 * q + 1], a[4 * q + 3]);
    b[4 * q + 3] = _mm_unpackhi_epi16(a[4 * q + 1], a[4 * q + 3]);
  }
  for (int h = 0; h < 2; ++h) {  // 32-bit: rows 8h..8h+7
    for (int m = 0; m < 4; ++m) {
      c[8 * h + 2 * m] = _mm_unpacklo_epi32(b[8 * h + m], b[8 * h + 4 + m]);
      c[8 * h + 2 * m + 1] = _mm_unpackhi_epi32(b[8 * h + m], b[8 * h + 4 + m]);
    }
  }
  for (int m = 0; m < 8; ++m) {  // 64-bit: columns 2m, 2m + 1
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * m) * dst_stride),
                     _mm_unpacklo_epi64(c[m], c[m + 8]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * m + 1) * dst_stride),
                     _mm_unpackhi_epi64(c[m], c[m + 8]));
  }
}

// Transposes `cols` columns of 16 rows into cols x 16 bytes (column j at dst + 16 j).
void TransposeBand(const uint8_t* const* rows, size_t cols, uint8_t* dst) {
  size_t col = 0;
  for (; col + 16 <= cols; col += 16) Transpose16x16(rows, col, dst + col * kBand, kBand);
  for (; col < cols; ++col) {
    for (int r = 0; r < kBand; ++r) dst[col * kBand + r] = rows[r][col];
  }
}

// The transposed band's accumulation: for every output sample, all 16 rows at once (the row
// loop is what the compiler vectorizes for each target).
GLM4V_ALWAYS_INLINE void AccumulateTransposed(const uint8_t* in_t, const ResampleTaps& taps,
                                              uint8_t* out_t) {
  const int out_w = static_cast<int>(taps.first.size());
  for (int x = 0; x < out_w; ++x) {
    const int32_t* k = &taps.weights[static_cast<size_t>(x) * taps.ksize];
    const int n = taps.count[x];
    for (int c = 0; c < 3; ++c) {
      int32_t acc[kBand];
      for (int r = 0; r < kBand; ++r) acc[r] = kHalf;
      const uint8_t* src = in_t + (static_cast<size_t>(taps.first[x]) * 3 + c) * kBand;
      for (int i = 0; i < n; ++i) {
        const uint8_t* s = src + static_cast<size_t>(i) * 3 * kBand;
        const int32_t w = k[i];
        for (int r = 0; r < kBand; ++r) acc[r] += static_cast<int32_t>(s[r]) * w;
      }
      uint8_t* dst = out_t + (static_cast<size_t>(x) * 3 + c) * kBand;
      for (int r = 0; r < kBand; ++r) {
        const int32_t v = acc[r] >> kResamplePrecisionBits;
        dst[r] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
    }
  }
}

GLM4V_ALWAYS_INLINE void VerticalBody(const uint8_t* in, int w, const ResampleTaps& taps,
                                      int y0, int y1, uint8_t* out, const float (*lut)[256],
                                      float* planes, size_t plane_size) {
  const size_t stride = static_cast<size_t>(w) * 3;
  int32_t acc[kRun];
  uint8_t values[kRun];
  for (int y = y0; y < y1; ++y) {
    const int32_t* k = &taps.weights[static_cast<size_t>(y) * taps.ksize];
    const uint8_t* src = in + static_cast<size_t>(taps.first[y]) * stride;
    const int n = taps.count[y];
    for (size_t start = 0; start < stride; start += kRun) {
      const int len = static_cast<int>(std::min<size_t>(kRun, stride - start));
      for (int j = 0; j < len; ++j) acc[j] = kHalf;
      for (int i = 0; i < n; ++i) {
        const uint8_t* s = src + static_cast<size_t>(i) * stride + start;
        const int32_t wt = k[i];
        for (int j = 0; j < len; ++j) acc[j] += static_cast<int32_t>(s[j]) * wt;
      }
      uint8_t* dst = lut == nullptr ? out + static_cast<size_t>(y) * stride + start : values;
      for (int j = 0; j < len; ++j) {
        const int32_t v = acc[j] >> kResamplePrecisionBits;
        dst[j] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
      }
      if (lut != nullptr) {
        // start is a multiple of kRun (divisible by 3): value j is channel j % 3.
        const size_t pixel0 = static_cast<size_t>(y) * w + start / 3;
        for (int j = 0; j < len; ++j) {
          const int ch = j % 3;
          planes[ch * plane_size + pixel0 + j / 3] = lut[ch][values[j]];
        }
      }
    }
  }
}

// Per-target instances of the vectorizable bodies.
#define GLM4V_RESAMPLE_TARGET(name, target_attr)                                            \
  target_attr void name##Accumulate(const uint8_t* in_t, const ResampleTaps& taps,          \
                                    uint8_t* out_t) {                                       \
    AccumulateTransposed(in_t, taps, out_t);                                                \
  }                                                                                         \
  target_attr void name##Vertical(const uint8_t* in, int w, const ResampleTaps& taps,       \
                                  int y0, int y1, uint8_t* out, const float(*lut)[256],     \
                                  float* planes, size_t plane_size) {                       \
    VerticalBody(in, w, taps, y0, y1, out, lut, planes, plane_size);                        \
  }

GLM4V_RESAMPLE_TARGET(Avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))))
GLM4V_RESAMPLE_TARGET(Avx2, __attribute__((target("avx2,fma"))))
GLM4V_RESAMPLE_TARGET(Baseline, )

void Accumulate(const uint8_t* in_t, const ResampleTaps& taps, uint8_t* out_t) {
  switch (cpu::ActiveSimdLevel()) {
    case cpu::SimdLevel::kAvx512:
      return Avx512Accumulate(in_t, taps, out_t);
    case cpu::SimdLevel::kAvx2:
      return Avx2Accumulate(in_t, taps, out_t);
    case cpu::SimdLevel::kScalar:
      break;
  }
  BaselineAccumulate(in_t, taps, out_t);
}

void Vertical(const uint8_t* in, int w, const ResampleTaps& taps, int y0, int y1, uint8_t* out,
              const float (*lut)[256], float* planes, size_t plane_size) {
  switch (cpu::ActiveSimdLevel()) {
    case cpu::SimdLevel::kAvx512:
      return Avx512Vertical(in, w, taps, y0, y1, out, lut, planes, plane_size);
    case cpu::SimdLevel::kAvx2:
      return Avx2Vertical(in, w, taps, y0, y1, out, lut, planes, plane_size);
    case cpu::SimdLevel::kScalar:
      break;
  }
  BaselineVertical(in, w, taps, y0, y1, out, lut, planes, plane_size);
}

}  // namespace

void ResampleHorizontalBand(const uint8_t* in, int in_w, int y0, int rows,
                            const ResampleTaps& taps, uint8_t* out,
                            std::vector<uint8_t>* scratch) {
  const size_t in_stride = static_cast<size_t>(in_w) * 3;
  const size_t out_stride = taps.first.size() * 3;
  // [transposed input | transposed output | 16 output rows]
  scratch->resize((in_stride + 2 * out_stride) * kBand);
  uint8_t* in_t = scratch->data();
  uint8_t* out_t = in_t + in_stride * kBand;
  uint8_t* out_rows = out_t + out_stride * kBand;
  // A short last band repeats its last row; those results are not copied out.
  const uint8_t* src_rows[kBand];
  for (int r = 0; r < kBand; ++r) {
    src_rows[r] = in + static_cast<size_t>(y0 + std::min(r, rows - 1)) * in_stride;
  }
  TransposeBand(src_rows, in_stride, in_t);
  Accumulate(in_t, taps, out_t);
  // Back to rows: out_t is out_stride columns of 16 bytes.
  size_t col = 0;
  for (; col + 16 <= out_stride; col += 16) {
    const uint8_t* t_rows[kBand];
    for (int j = 0; j < kBand; ++j) t_rows[j] = out_t + (col + j) * kBand;
    // Transposing the 16x16 block of (sample, row) gives (row, sample).
    Transpose16x16(t_rows, 0, out_rows + col, out_stride);
  }
  for (; col < out_stride; ++col) {
    for (int r = 0; r < kBand; ++r) out_rows[r * out_stride + col] = out_t[col * kBand + r];
  }
  for (int r = 0; r < rows; ++r) {
    std::memcpy(out + static_cast<size_t>(y0 + r) * out_stride, out_rows + r * out_stride,
                out_stride);
  }
}

void ResampleVerticalRows(const uint8_t* in, int w, const ResampleTaps& taps, int y0, int y1,
                          uint8_t* out) {
  Vertical(in, w, taps, y0, y1, out, nullptr, nullptr, 0);
}

void ResampleVerticalRowsToPlanes(const uint8_t* in, int w, const ResampleTaps& taps, int y0,
                                  int y1, const float (*lut)[256], float* planes,
                                  size_t plane_size) {
  Vertical(in, w, taps, y0, y1, nullptr, lut, planes, plane_size);
}

}  // namespace glm4v
