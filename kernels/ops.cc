#include "kernels/ops.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

absl::Status Invalid(absl::string_view op, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what));
}

// A defined, contiguous f32 tensor on `device` with `ndim` dims (-1: any).
absl::Status CheckF32(absl::string_view op, absl::string_view arg, const Tensor& t, Device device,
                      int ndim) {
  if (!t.defined()) return Invalid(op, absl::StrCat(arg, " is undefined"));
  if (t.dtype() != DType::kF32) {
    return Invalid(op, absl::StrCat(arg, " must be f32, got ", t.DebugString()));
  }
  if (t.device() != device) return Invalid(op, absl::StrCat(arg, " is on the wrong device"));
  if (!t.is_contiguous()) return Invalid(op, absl::StrCat(arg, " must be contiguous"));
  if (ndim >= 0 && t.ndim() != ndim) {
    return Invalid(op, absl::StrCat(arg, " must have ", ndim, " dims, got ", t.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status CheckShape(absl::string_view op, absl::string_view arg, const Tensor& t,
                        const Shape& want) {
  if (t.shape() != want) {
    return Invalid(op, absl::StrCat(arg, " has shape ", ShapeToString(t.shape()), ", want ",
                                    ShapeToString(want)));
  }
  return absl::OkStatus();
}

int64_t RowsOf(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(0); }
int64_t ColsOf(const Tensor& t) {
  int64_t rows = RowsOf(t);
  return rows == 0 ? 0 : t.numel() / rows;
}

}  // namespace

absl::Status Backend::Linear(const Tensor& x, const Tensor& weight, const Tensor* bias,
                             Tensor* y) {
  constexpr absl::string_view kOp = "Linear";
  RETURN_IF_ERROR(CheckF32(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "weight", weight, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "y", *y, device(), 2));
  if (weight.dim(1) != x.dim(1)) {
    return Invalid(kOp, absl::StrCat("x ", x.DebugString(), " vs weight ", weight.DebugString()));
  }
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, {x.dim(0), weight.dim(0)}));
  if (bias != nullptr) {
    RETURN_IF_ERROR(CheckF32(kOp, "bias", *bias, device(), 1));
    RETURN_IF_ERROR(CheckShape(kOp, "bias", *bias, {weight.dim(0)}));
  }
  DoLinear(x, weight, bias, y);
  return absl::OkStatus();
}

absl::Status Backend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) {
  constexpr absl::string_view kOp = "RmsNorm";
  RETURN_IF_ERROR(CheckF32(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "weight", weight, device(), 1));
  RETURN_IF_ERROR(CheckF32(kOp, "y", *y, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "weight", weight, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, x.shape()));
  DoRmsNorm(x, weight, eps, y);
  return absl::OkStatus();
}

absl::Status Backend::LayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                float eps, Tensor* y) {
  constexpr absl::string_view kOp = "LayerNorm";
  RETURN_IF_ERROR(CheckF32(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "weight", weight, device(), 1));
  RETURN_IF_ERROR(CheckF32(kOp, "bias", bias, device(), 1));
  RETURN_IF_ERROR(CheckF32(kOp, "y", *y, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "weight", weight, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "bias", bias, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, x.shape()));
  DoLayerNorm(x, weight, bias, eps, y);
  return absl::OkStatus();
}

absl::Status Backend::GeluInPlace(Tensor* x) {
  RETURN_IF_ERROR(CheckF32("GeluInPlace", "x", *x, device(), -1));
  DoGeluInPlace(x);
  return absl::OkStatus();
}

absl::Status Backend::SiluAndMul(const Tensor& x, Tensor* y) {
  constexpr absl::string_view kOp = "SiluAndMul";
  RETURN_IF_ERROR(CheckF32(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "y", *y, device(), 2));
  if (x.dim(1) % 2 != 0) return Invalid(kOp, "x must have an even number of columns");
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, {x.dim(0), x.dim(1) / 2}));
  DoSiluAndMul(x, y);
  return absl::OkStatus();
}

absl::Status Backend::AddInPlace(const Tensor& x, Tensor* acc) {
  RETURN_IF_ERROR(CheckF32("AddInPlace", "x", x, device(), -1));
  RETURN_IF_ERROR(CheckF32("AddInPlace", "acc", *acc, device(), -1));
  RETURN_IF_ERROR(CheckShape("AddInPlace", "acc", *acc, x.shape()));
  DoAddInPlace(x, acc);
  return absl::OkStatus();
}

absl::Status Backend::ScaleInPlace(float scale, Tensor* x) {
  RETURN_IF_ERROR(CheckF32("ScaleInPlace", "x", *x, device(), -1));
  DoScaleInPlace(scale, x);
  return absl::OkStatus();
}

absl::Status Backend::SplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  constexpr absl::string_view kOp = "SplitColumns";
  RETURN_IF_ERROR(CheckF32(kOp, "x", x, device(), 2));
  int64_t total = 0;
  for (Tensor* part : parts) {
    RETURN_IF_ERROR(CheckF32(kOp, "part", *part, device(), 2));
    if (part->dim(0) != x.dim(0)) return Invalid(kOp, "part rows differ from x rows");
    total += part->dim(1);
  }
  if (total != x.dim(1)) {
    return Invalid(kOp, absl::StrCat("parts have ", total, " columns, x has ", x.dim(1)));
  }
  DoSplitColumns(x, parts);
  return absl::OkStatus();
}

absl::Status Backend::GatherRows(const Tensor& table, absl::Span<const int32_t> rows,
                                 Tensor* out) {
  constexpr absl::string_view kOp = "GatherRows";
  RETURN_IF_ERROR(CheckF32(kOp, "table", table, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "out", *out, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "out", *out, {static_cast<int64_t>(rows.size()), table.dim(1)}));
  for (int32_t r : rows) {
    if (r < 0 || r >= table.dim(0)) {
      return Invalid(kOp, absl::StrCat("row ", r, " outside [0, ", table.dim(0), ")"));
    }
  }
  DoGatherRows(table, rows, out);
  return absl::OkStatus();
}

absl::Status Backend::CopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                               int64_t dst_row) {
  constexpr absl::string_view kOp = "CopyRows";
  RETURN_IF_ERROR(CheckF32(kOp, "src", src, device(), -1));
  RETURN_IF_ERROR(CheckF32(kOp, "dst", *dst, device(), -1));
  if (src.ndim() < 1 || dst->ndim() < 1 || ColsOf(src) != ColsOf(*dst)) {
    return Invalid(kOp, absl::StrCat("row widths differ: ", src.DebugString(), " vs ",
                                     dst->DebugString()));
  }
  if (num_rows < 0 || src_row < 0 || dst_row < 0 || src_row + num_rows > RowsOf(src) ||
      dst_row + num_rows > RowsOf(*dst)) {
    return Invalid(kOp, "row range out of bounds");
  }
  DoCopyRows(src, src_row, num_rows, dst, dst_row);
  return absl::OkStatus();
}

absl::Status Backend::PatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                  Tensor* cols) {
  constexpr absl::string_view kOp = "PatchIm2Col";
  RETURN_IF_ERROR(CheckF32(kOp, "image", image, device(), 4));
  RETURN_IF_ERROR(CheckF32(kOp, "cols", *cols, device(), 2));
  const bool first = layout == ImageLayout::kChannelsFirst;
  const int64_t b = image.dim(0), c = first ? image.dim(1) : image.dim(3);
  const int64_t h = first ? image.dim(2) : image.dim(1), w = first ? image.dim(3) : image.dim(2);
  if (kernel <= 0 || h % kernel != 0 || w % kernel != 0) {
    return Invalid(kOp, absl::StrCat("image ", image.DebugString(), " not divisible by kernel ",
                                     kernel));
  }
  RETURN_IF_ERROR(
      CheckShape(kOp, "cols", *cols, {b * (h / kernel) * (w / kernel), c * kernel * kernel}));
  DoPatchIm2Col(image, layout, kernel, cols);
  return absl::OkStatus();
}

absl::Status Backend::ApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                                int rotary_dim, double base) {
  constexpr absl::string_view kOp = "ApplyRope";
  RETURN_IF_ERROR(CheckF32(kOp, "x", *x, device(), 2));
  if (head_dim <= 0 || x->dim(1) % head_dim != 0) return Invalid(kOp, "bad head_dim");
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return Invalid(kOp, "rotary_dim must be even and <= head_dim");
  }
  if (static_cast<int64_t>(positions.size()) != x->dim(0)) {
    return Invalid(kOp, absl::StrCat(positions.size(), " positions for ", x->dim(0), " rows"));
  }
  if (!(base > 0)) return Invalid(kOp, "base must be positive");
  DoApplyRope(x, positions, head_dim, rotary_dim, base);
  return absl::OkStatus();
}

absl::Status Backend::Attention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                                int num_heads, int num_kv_heads, bool causal, float scale,
                                Tensor* out) {
  constexpr absl::string_view kOp = "Attention";
  RETURN_IF_ERROR(CheckF32(kOp, "q", q, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "k", k, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "v", v, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "out", *out, device(), 2));
  if (batch <= 0 || q.dim(0) % batch != 0) return Invalid(kOp, "rows not divisible by batch");
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0 ||
      q.dim(1) % num_heads != 0) {
    return Invalid(kOp, "bad head counts");
  }
  const int64_t d = q.dim(1) / num_heads;
  RETURN_IF_ERROR(CheckShape(kOp, "k", k, {q.dim(0), num_kv_heads * d}));
  RETURN_IF_ERROR(CheckShape(kOp, "v", v, {q.dim(0), num_kv_heads * d}));
  RETURN_IF_ERROR(CheckShape(kOp, "out", *out, q.shape()));
  DoAttention(q, k, v, batch, num_heads, num_kv_heads, causal, scale, out);
  return absl::OkStatus();
}

absl::Status Backend::WriteKvCache(const Tensor& k, const Tensor& v,
                                   absl::Span<const int32_t> slots, int layer,
                                   PagedKvCache* cache) {
  constexpr absl::string_view kOp = "WriteKvCache";
  const KvCacheShape& cs = cache->shape();
  RETURN_IF_ERROR(CheckF32(kOp, "k", k, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "v", v, device(), 2));
  const Shape want = {static_cast<int64_t>(slots.size()),
                      static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim};
  RETURN_IF_ERROR(CheckShape(kOp, "k", k, want));
  RETURN_IF_ERROR(CheckShape(kOp, "v", v, want));
  if (layer < 0 || layer >= cs.num_layers) return Invalid(kOp, "layer out of range");
  const int64_t num_slots = static_cast<int64_t>(cs.num_blocks) * cs.block_size;
  for (int32_t s : slots) {
    if (s < 0 || s >= num_slots) {
      return Invalid(kOp, absl::StrCat("slot ", s, " outside [0, ", num_slots, ")"));
    }
  }
  DoWriteKvCache(k, v, slots, layer, cache);
  return absl::OkStatus();
}

absl::Status Backend::PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                     absl::Span<const PagedSequence> sequences, int num_heads,
                                     float scale, Tensor* out) {
  constexpr absl::string_view kOp = "PagedAttention";
  const KvCacheShape& cs = cache.shape();
  RETURN_IF_ERROR(CheckF32(kOp, "q", q, device(), 2));
  RETURN_IF_ERROR(CheckF32(kOp, "out", *out, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "out", *out, q.shape()));
  if (layer < 0 || layer >= cs.num_layers) return Invalid(kOp, "layer out of range");
  if (num_heads <= 0 || cs.num_kv_heads <= 0 || num_heads % cs.num_kv_heads != 0 ||
      q.dim(1) != static_cast<int64_t>(num_heads) * cs.head_dim) {
    return Invalid(kOp, absl::StrCat("q ", q.DebugString(), " does not match ", num_heads,
                                     " heads of ", cs.head_dim, " and ", cs.num_kv_heads,
                                     " KV heads"));
  }
  for (const PagedSequence& s : sequences) {
    if (s.query_begin < 0 || s.num_queries < 0 || s.num_cached < 0 ||
        s.query_begin + s.num_queries > q.dim(0)) {
      return Invalid(kOp, "sequence query rows out of range");
    }
    const int64_t total = s.num_cached + s.num_queries;
    const int64_t blocks_needed = (total + cs.block_size - 1) / cs.block_size;
    if (static_cast<int64_t>(s.block_table.size()) < blocks_needed) {
      return Invalid(kOp, absl::StrCat("block table has ", s.block_table.size(), " blocks, ",
                                       blocks_needed, " needed"));
    }
    for (int64_t i = 0; i < blocks_needed; ++i) {
      if (s.block_table[i] < 0 || s.block_table[i] >= cs.num_blocks) {
        return Invalid(kOp, absl::StrCat("block id ", s.block_table[i], " out of range"));
      }
    }
  }
  DoPagedAttention(q, cache, layer, sequences, num_heads, scale, out);
  return absl::OkStatus();
}

absl::Status Backend::Argmax(const Tensor& x, std::vector<int32_t>* out) {
  RETURN_IF_ERROR(CheckF32("Argmax", "x", x, device(), 2));
  if (x.dim(1) == 0) return Invalid("Argmax", "no columns");
  DoArgmax(x, out);
  return absl::OkStatus();
}

}  // namespace glm4v
