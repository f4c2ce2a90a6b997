#include "kernels/linear_weight.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/parallel.h"
#include "kernels/fp8_e4m3.h"

// The quantizers' per-value loops (search of int4 ranges, bf16 widening) are plain arithmetic the
// compiler vectorizes at -O3; at the build's -O2 they stay scalar (a 40-layer decoder took 63 s
// to quantize to int4).
#pragma GCC optimize("O3")

namespace glm4v {
namespace {

// Round to nearest (ties to even) for |v| < 2^22, without the libm call: adding and removing
// 1.5 * 2^23 leaves the rounded value in f32 arithmetic; compilers vectorize it.
inline float RoundNearest(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// One row of the matrix as f32.
void RowToF32(const Tensor& m, int64_t r, std::vector<float>* out) {
  const int64_t in = m.dim(1);
  out->resize(in);
  const auto* base = static_cast<const unsigned char*>(m.raw_data()) + r * in * DTypeSize(m.dtype());
  switch (m.dtype()) {
    case DType::kF32:
      std::memcpy(out->data(), base, in * sizeof(float));
      break;
    case DType::kBF16:
      for (int64_t t = 0; t < in; ++t) {
        (*out)[t] = BF16ToF32(reinterpret_cast<const uint16_t*>(base)[t]);
      }
      break;
    default:  // f16
      for (int64_t t = 0; t < in; ++t) {
        (*out)[t] = F16ToF32(reinterpret_cast<const uint16_t*>(base)[t]);
      }
      break;
  }
}

void QuantizeInt8Row(const std::vector<float>& w, int8_t* q, float* scale) {
  float max_abs = 0.0f;
  for (float v : w) max_abs = std::max(max_abs, std::fabs(v));
  *scale = max_abs / 127.0f;
  const float inv = max_abs > 0.0f ? 127.0f / max_abs : 0.0f;
  for (size_t t = 0; t < w.size(); ++t) {
    q[t] = static_cast<int8_t>(std::clamp(RoundNearest(w[t] * inv), -127.0f, 127.0f));
  }
}

void QuantizeFp8Row(const std::vector<float>& w, uint8_t* q, float* scale) {
  float max_abs = 0.0f;
  for (float v : w) max_abs = std::max(max_abs, std::fabs(v));
  *scale = max_abs / kE4M3Max;
  const float inv = max_abs > 0.0f ? kE4M3Max / max_abs : 0.0f;
  for (size_t t = 0; t < w.size(); ++t) q[t] = F32ToE4M3(w[t] * inv);
}

// The 4-bit code of one group for the range [lo, hi] (containing 0, so zero is exact): scale,
// zero point, and the squared error it leaves.
struct Int4Code {
  float scale = 0.0f, zero = 0.0f;
  double error = 0.0;
};

Int4Code FitInt4(const float* w, int64_t n, float lo, float hi) {
  Int4Code c;
  c.scale = (hi - lo) / 15.0f;
  c.zero = c.scale > 0.0f ? std::clamp(RoundNearest(-lo / c.scale), 0.0f, 15.0f) : 0.0f;
  const float inv = c.scale > 0.0f ? 1.0f / c.scale : 0.0f;
  float error = 0.0f;  // a group's 128 squares: f32 is plenty to rank the candidates
  for (int64_t t = 0; t < n; ++t) {
    const float q = std::min(std::max(RoundNearest(w[t] * inv) + c.zero, 0.0f), 15.0f);
    const float d = w[t] - (q - c.zero) * c.scale;
    error += d * d;
  }
  c.error = error;
  return c;
}

// Asymmetric 4-bit code of each group: its range [min, max] (widened to contain 0) onto 0..15,
// then shrunk toward 0 in steps while that lowers the group's squared error (clipping the
// extremes of a group buys resolution for the bulk of its values).
void QuantizeInt4Row(const std::vector<float>& w, uint8_t* packed, float* scales,
                     uint8_t* zeros) {
  const int64_t in = static_cast<int64_t>(w.size());
  std::vector<uint8_t> q(Int4RowBytes(in) * 2, 0);
  for (int64_t g = 0; g * kInt4GroupSize < in; ++g) {
    const int64_t t0 = g * kInt4GroupSize, t1 = std::min(in, t0 + kInt4GroupSize);
    float lo = 0.0f, hi = 0.0f;
    for (int64_t t = t0; t < t1; ++t) {
      lo = std::min(lo, w[t]);
      hi = std::max(hi, w[t]);
    }
    Int4Code best = FitInt4(w.data() + t0, t1 - t0, lo, hi);
    for (int step = 1; step <= 5; ++step) {
      const float shrink = 1.0f - 0.04f * static_cast<float>(step);
      const Int4Code c = FitInt4(w.data() + t0, t1 - t0, lo * shrink, hi * shrink);
      if (c.error < best.error) best = c;
    }
    scales[g] = best.scale;
    zeros[g] = static_cast<uint8_t>(best.zero);
    const float inv = best.scale > 0.0f ? 1.0f / best.scale : 0.0f;
    for (int64_t t = t0; t < t1; ++t) {
      q[t] = static_cast<uint8_t>(std::clamp(RoundNearest(w[t] * inv) + best.zero, 0.0f, 15.0f));
    }
  }
  for (int64_t b = 0; b < Int4RowBytes(in) / 16; ++b) {
    for (int64_t i = 0; i < 16; ++i) {
      packed[b * 16 + i] = static_cast<uint8_t>(q[b * 32 + i] | (q[b * 32 + 16 + i] << 4));
    }
  }
}

}  // namespace

std::string WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kFloat:
      return "float";
    case WeightFormat::kInt8:
      return "int8";
    case WeightFormat::kInt4:
      return "int4";
    case WeightFormat::kFp8:
      return "fp8";
  }
  return "?";
}

size_t LinearWeight::nbytes() const {
  return values.nbytes() + scales.nbytes() + zeros.nbytes();
}

std::string LinearWeight::DebugString() const {
  if (!quantized()) return values.DebugString();
  return absl::StrCat(WeightFormatName(format), "[", out_features(), ",", in, "]");
}

std::string LinearWeight::StorageName() const {
  return quantized() ? WeightFormatName(format) : std::string(DTypeName(values.dtype()));
}

absl::StatusOr<LinearWeight> QuantizeLinearWeight(const Tensor& matrix, WeightFormat format) {
  if (!matrix.defined() || matrix.ndim() != 2 || matrix.device() != Device::kCpu ||
      !matrix.is_contiguous() ||
      (matrix.dtype() != DType::kF32 && matrix.dtype() != DType::kBF16 &&
       matrix.dtype() != DType::kF16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("QuantizeLinearWeight: need a contiguous host float matrix, got ",
                     matrix.DebugString()));
  }
  if (format == WeightFormat::kFloat) return LinearWeight(matrix);
  const int64_t out = matrix.dim(0), in = matrix.dim(1);
  LinearWeight w;
  w.format = format;
  w.in = in;
  if (format == WeightFormat::kInt8 || format == WeightFormat::kFp8) {
    w.values = Tensor::Empty(DType::kU8, {out, in});
    w.scales = Tensor::Empty(DType::kF32, {out});
  } else {
    w.values = Tensor::Zeros(DType::kU8, {out, Int4RowBytes(in)});
    w.scales = Tensor::Empty(DType::kF32, {out, Int4Groups(in)});
    w.zeros = Tensor::Empty(DType::kU8, {out, Int4Groups(in)});
  }
  // Rows are independent: spread them over the CPU pool (loading 9B parameters is otherwise
  // tens of seconds on one core).
  std::atomic<int64_t> bad_row{-1};
  LinearWeight* const dst = &w;
  cpu::ParallelFor(out, in * 40, [&, dst](int64_t r) {
    thread_local std::vector<float> row;
    RowToF32(matrix, r, &row);
    for (float v : row) {
      if (!std::isfinite(v)) {
        bad_row.store(r);
        return;
      }
    }
    if (format == WeightFormat::kInt8) {
      QuantizeInt8Row(row, reinterpret_cast<int8_t*>(dst->values.data<uint8_t>() + r * in),
                      dst->scales.data<float>() + r);
    } else if (format == WeightFormat::kFp8) {
      QuantizeFp8Row(row, dst->values.data<uint8_t>() + r * in, dst->scales.data<float>() + r);
    } else {
      const int64_t groups = Int4Groups(in);
      QuantizeInt4Row(row, dst->values.data<uint8_t>() + r * Int4RowBytes(in),
                      dst->scales.data<float>() + r * groups,
                      dst->zeros.data<uint8_t>() + r * groups);
    }
  });
  if (bad_row.load() >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("QuantizeLinearWeight: row ", bad_row.load(),
                                                   " of ", matrix.DebugString(),
                                                   " is not finite"));
  }
  return w;
}

Tensor DequantizeLinearWeight(const LinearWeight& weight) {
  if (!weight.quantized()) return weight.values.ToF32();
  const int64_t out = weight.out_features(), in = weight.in;
  Tensor m = Tensor::Empty(DType::kF32, {out, in});
  float* dst = m.data<float>();
  for (int64_t r = 0; r < out; ++r) {
    if (weight.format == WeightFormat::kInt8) {
      const auto* q = reinterpret_cast<const int8_t*>(weight.values.data<uint8_t>() + r * in);
      const float s = weight.scales.data<float>()[r];
      for (int64_t t = 0; t < in; ++t) dst[r * in + t] = s * static_cast<float>(q[t]);
      continue;
    }
    if (weight.format == WeightFormat::kFp8) {
      const uint8_t* q = weight.values.data<uint8_t>() + r * in;
      const float s = weight.scales.data<float>()[r];
      for (int64_t t = 0; t < in; ++t) dst[r * in + t] = s * E4M3ToF32(q[t]);
      continue;
    }
    const uint8_t* packed = weight.values.data<uint8_t>() + r * Int4RowBytes(in);
    const int64_t groups = Int4Groups(in);
    for (int64_t t = 0; t < in; ++t) {
      const uint8_t byte = packed[t / 32 * 16 + t % 16];
      const int q = (t % 32) < 16 ? (byte & 15) : (byte >> 4);
      const int64_t g = r * groups + t / kInt4GroupSize;
      dst[r * in + t] = weight.scales.data<float>()[g] *
                        static_cast<float>(q - static_cast<int>(weight.zeros.data<uint8_t>()[g]));
    }
  }
  return m;
}

}  // namespace glm4v
