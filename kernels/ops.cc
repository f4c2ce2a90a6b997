#include "kernels/ops.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {

absl::Status Invalid(absl::string_view op, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what));
}

bool IsFloat(DType d) { return d == DType::kF32 || d == DType::kBF16; }

// A defined, contiguous tensor on `device` with `ndim` dims (-1: any).
absl::Status CheckTensor(absl::string_view op, absl::string_view arg, const Tensor& t,
                         Device device, int ndim) {
  if (!t.defined()) return Invalid(op, absl::StrCat(arg, " is undefined"));
  if (t.device() != device) return Invalid(op, absl::StrCat(arg, " is on the wrong device"));
  if (!t.is_contiguous()) return Invalid(op, absl::StrCat(arg, " must be contiguous"));
  if (ndim >= 0 && t.ndim() != ndim) {
    return Invalid(op, absl::StrCat(arg, " must have ", ndim, " dims, got ", t.DebugString()));
  }
  return absl::OkStatus();
}

// CheckTensor plus a float dtype (f32 or bf16).
absl::Status CheckFloat(absl::string_view op, absl::string_view arg, const Tensor& t,
                        Device device, int ndim) {
  RETURN_IF_ERROR(CheckTensor(op, arg, t, device, ndim));
  if (!IsFloat(t.dtype())) {
    return Invalid(op, absl::StrCat(arg, " must be f32 or bf16, got ", t.DebugString()));
  }
  return absl::OkStatus();
}

// CheckFloat plus the same dtype as `like` (the op's activation dtype).
absl::Status CheckLike(absl::string_view op, absl::string_view arg, const Tensor& t,
                       const Tensor& like, Device device, int ndim) {
  RETURN_IF_ERROR(CheckFloat(op, arg, t, device, ndim));
  if (t.dtype() != like.dtype()) {
    return Invalid(op, absl::StrCat(arg, " is ", t.DebugString(), ", want the dtype of ",
                                    like.DebugString()));
  }
  return absl::OkStatus();
}

// An i32 index tensor on `device` with `ndim` dims.
absl::Status CheckIndices(absl::string_view op, absl::string_view arg, const Tensor& t,
                          Device device, int ndim) {
  RETURN_IF_ERROR(CheckTensor(op, arg, t, device, ndim));
  if (t.dtype() != DType::kI32) {
    return Invalid(op, absl::StrCat(arg, " must be i32, got ", t.DebugString()));
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

// The parts of an int8 / int4 / fp8 weight: u8 values [out, bytes per row], f32 scales, u8 zero
// points (int4), all on `device` with the shapes linear_weight.h gives.
absl::Status CheckQuantizedWeight(absl::string_view op, const LinearWeight& w, Device device) {
  RETURN_IF_ERROR(CheckTensor(op, "weight values", w.values, device, 2));
  RETURN_IF_ERROR(CheckTensor(op, "weight scales", w.scales, device, -1));
  const int64_t out = w.values.dim(0);
  const bool int4 = w.format == WeightFormat::kInt4;
  const int64_t row_bytes = int4 ? Int4RowBytes(w.in) : w.in;
  if (w.values.dtype() != DType::kU8 || w.values.dim(1) != row_bytes || w.in <= 0 ||
      w.scales.dtype() != DType::kF32) {
    return Invalid(op, absl::StrCat("malformed quantized weight ", w.DebugString()));
  }
  if (!int4) return CheckShape(op, "weight scales", w.scales, {out});
  RETURN_IF_ERROR(CheckShape(op, "weight scales", w.scales, {out, Int4Groups(w.in)}));
  RETURN_IF_ERROR(CheckTensor(op, "weight zeros", w.zeros, device, 2));
  if (w.zeros.dtype() != DType::kU8) return Invalid(op, "int4 zero points must be u8");
  return CheckShape(op, "weight zeros", w.zeros, {out, Int4Groups(w.in)});
}

int64_t RowsOf(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(0); }
int64_t ColsOf(const Tensor& t) {
  int64_t rows = RowsOf(t);
  return rows == 0 ? 0 : t.numel() / rows;
}

absl::Status CheckHeads(absl::string_view op, int num_heads, int num_kv_heads) {
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0) {
    return Invalid(op, absl::StrCat("bad head counts: ", num_heads, " query heads, ",
                                    num_kv_heads, " KV heads"));
  }
  return absl::OkStatus();
}

absl::Status CheckRopeArgs(absl::string_view op, const Tensor& x, int head_dim, int rotary_dim,
                           double base) {
  if (head_dim <= 0 || x.dim(1) % head_dim != 0) return Invalid(op, "bad head_dim");
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    return Invalid(op, "rotary_dim must be even and <= head_dim");
  }
  if (!(base > 0)) return Invalid(op, "base must be positive");
  return absl::OkStatus();
}

absl::Status CheckKvRows(absl::string_view op, const Tensor& k, const Tensor& v, int64_t rows,
                         int layer, const PagedKvCache& cache, Device device) {
  const KvCacheShape& cs = cache.shape();
  RETURN_IF_ERROR(CheckFloat(op, "k", k, device, 2));
  RETURN_IF_ERROR(CheckLike(op, "v", v, k, device, 2));
  const Shape want = {rows, static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim};
  RETURN_IF_ERROR(CheckShape(op, "k", k, want));
  RETURN_IF_ERROR(CheckShape(op, "v", v, want));
  if (cache.device() != device) return Invalid(op, "KV cache is on the wrong device");
  if (layer < 0 || layer >= cs.num_layers) return Invalid(op, "layer out of range");
  return absl::OkStatus();
}

absl::Status CheckPagedQuery(absl::string_view op, const Tensor& q, const PagedKvCache& cache,
                             int layer, int num_heads, const Tensor& out, Device device) {
  const KvCacheShape& cs = cache.shape();
  RETURN_IF_ERROR(CheckFloat(op, "q", q, device, 2));
  RETURN_IF_ERROR(CheckLike(op, "out", out, q, device, 2));
  RETURN_IF_ERROR(CheckShape(op, "out", out, q.shape()));
  if (cache.device() != device) return Invalid(op, "KV cache is on the wrong device");
  if (layer < 0 || layer >= cs.num_layers) return Invalid(op, "layer out of range");
  if (num_heads <= 0 || cs.num_kv_heads <= 0 || num_heads % cs.num_kv_heads != 0 ||
      q.dim(1) != static_cast<int64_t>(num_heads) * cs.head_dim) {
    return Invalid(op, absl::StrCat("q ", q.DebugString(), " does not match ", num_heads,
                                    " heads of ", cs.head_dim, " and ", cs.num_kv_heads,
                                    " KV heads"));
  }
  return absl::OkStatus();
}

}  // namespace

PagedBatchHost PagedBatchHost::From(absl::Span<const PagedSequence> sequences,
                                    ContextShare share) {
  PagedBatchHost host;
  host.share = share;
  host.sequences.reserve(sequences.size() * 4);
  for (const PagedSequence& s : sequences) {
    const int64_t kv_len = s.num_cached + s.num_queries;
    host.sequences.push_back(static_cast<int32_t>(s.query_begin));
    host.sequences.push_back(static_cast<int32_t>(s.num_queries));
    host.sequences.push_back(static_cast<int32_t>(kv_len));
    host.sequences.push_back(static_cast<int32_t>(host.block_tables.size()));
    host.block_tables.insert(host.block_tables.end(), s.block_table.begin(), s.block_table.end());
    host.max_num_queries = std::max<int>(host.max_num_queries, static_cast<int>(s.num_queries));
    host.max_kv_len = std::max<int>(host.max_kv_len, static_cast<int>(kv_len));
  }
  return host;
}

// ---- memory

absl::StatusOr<Tensor> Backend::Upload(const Tensor& host, DType storage) {
  if (!host.defined()) return Invalid("Upload", "tensor is undefined");
  if (host.device() != Device::kCpu) return Invalid("Upload", "not a host tensor");
  if (storage == DType::kI32 || storage == DType::kU8) {
    if (host.dtype() != storage) {
      return Invalid("Upload", absl::StrCat(std::string(DTypeName(storage)), " storage needs a tensor of it, got ",
                                            host.DebugString()));
    }
  } else if (!IsFloat(storage)) {
    return Invalid("Upload", "storage must be f32, bf16, i32 or u8");
  } else if (!IsFloat(host.dtype()) && host.dtype() != DType::kF16) {
    return Invalid("Upload", absl::StrCat("cannot store ", host.DebugString(), " as a float"));
  }
  return DoUpload(host, storage);
}

absl::StatusOr<LinearWeight> Backend::UploadLinearWeight(const LinearWeight& host,
                                                         DType float_storage) {
  LinearWeight out;
  out.format = host.format;
  out.in = host.in;
  if (!host.quantized()) {
    ASSIGN_OR_RETURN(out.values, Upload(host.values, float_storage));
    return out;
  }
  ASSIGN_OR_RETURN(out.values, Upload(host.values, DType::kU8));
  ASSIGN_OR_RETURN(out.scales, Upload(host.scales, DType::kF32));
  if (host.zeros.defined()) {
    ASSIGN_OR_RETURN(out.zeros, Upload(host.zeros, DType::kU8));
  }
  return out;
}

absl::StatusOr<Tensor> Backend::UploadIndices(absl::Span<const int32_t> values) {
  if (values.empty()) {
    Tensor empty = Empty(DType::kI32, {0});
    if (!empty.defined()) return absl::ResourceExhaustedError("cannot allocate an index tensor");
    return empty;
  }
  return DoUpload(Tensor::FromI32({static_cast<int64_t>(values.size())}, values), DType::kI32);
}

absl::StatusOr<PagedBatch> Backend::UploadPagedBatch(const PagedBatchHost& host) {
  if (host.sequences.size() % 4 != 0) {
    return Invalid("UploadPagedBatch", "sequences must hold 4 values per sequence");
  }
  PagedBatch batch;
  ASSIGN_OR_RETURN(batch.sequences, UploadIndices(host.sequences));
  ASSIGN_OR_RETURN(batch.sequences, batch.sequences.Reshape({host.num_sequences(), 4}));
  ASSIGN_OR_RETURN(batch.block_tables, UploadIndices(host.block_tables));
  batch.max_num_queries = host.max_num_queries;
  batch.max_kv_len = host.max_kv_len;
  batch.share = host.share;
  return batch;
}

absl::Status Backend::ZeroFill(Tensor* t) {
  RETURN_IF_ERROR(CheckTensor("ZeroFill", "t", *t, device(), -1));
  return DoZeroFill(t);
}

absl::Status Backend::WriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                                   int64_t offset) {
  constexpr absl::string_view kOp = "WriteIndices";
  RETURN_IF_ERROR(CheckIndices(kOp, "dst", *dst, device(), -1));
  if (offset < 0 || offset + static_cast<int64_t>(values.size()) > dst->numel()) {
    return Invalid(kOp, absl::StrCat(values.size(), " values at ", offset, " overflow ",
                                     dst->DebugString()));
  }
  if (values.empty()) return absl::OkStatus();
  return DoWriteIndices(values, dst, offset);
}

absl::StatusOr<PagedKvCache> Backend::AllocateKvCache(const KvCacheShape& shape, DType dtype) {
  if (!IsFloat(dtype)) return Invalid("AllocateKvCache", "dtype must be f32 or bf16");
  if (shape.num_layers <= 0 || shape.num_blocks < 0 || shape.block_size <= 0 ||
      shape.num_kv_heads <= 0 || shape.head_dim <= 0) {
    return Invalid("AllocateKvCache", "bad shape");
  }
  const Shape layer_shape = {shape.num_blocks, shape.block_size, shape.num_kv_heads,
                             shape.head_dim};
  std::vector<Tensor> keys, values;
  for (int l = 0; l < shape.num_layers; ++l) {
    for (std::vector<Tensor>* list : {&keys, &values}) {
      Tensor t = Empty(dtype, layer_shape);
      if (!t.defined()) {
        RETURN_IF_ERROR(Synchronize());
        return absl::ResourceExhaustedError(absl::StrCat(
            "cannot allocate the KV cache (", shape.num_blocks, " blocks) on ", name()));
      }
      RETURN_IF_ERROR(ZeroFill(&t));
      list->push_back(std::move(t));
    }
  }
  return PagedKvCache(shape, std::move(keys), std::move(values));
}

// ---- dense math

absl::Status Backend::Linear(const Tensor& x, const LinearWeight& weight, const Tensor* bias,
                             Tensor* y, bool accumulate) {
  constexpr absl::string_view kOp = "Linear";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckFloat(kOp, "y", *y, device(), 2));
  if (!weight.quantized()) {
    RETURN_IF_ERROR(CheckFloat(kOp, "weight", weight.values, device(), 2));
  } else {
    RETURN_IF_ERROR(CheckQuantizedWeight(kOp, weight, device()));
  }
  if (weight.in_features() != x.dim(1)) {
    return Invalid(kOp, absl::StrCat("x ", x.DebugString(), " vs weight ", weight.DebugString()));
  }
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, {x.dim(0), weight.out_features()}));
  if (bias != nullptr) {
    RETURN_IF_ERROR(CheckLike(kOp, "bias", *bias, *y, device(), 1));
    RETURN_IF_ERROR(CheckShape(kOp, "bias", *bias, {weight.out_features()}));
  }
  return DoLinear(x, weight, bias, y, accumulate);
}

absl::Status Backend::RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) {
  constexpr absl::string_view kOp = "RmsNorm";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "weight", weight, x, device(), 1));
  RETURN_IF_ERROR(CheckLike(kOp, "y", *y, x, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "weight", weight, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, x.shape()));
  return DoRmsNorm(x, weight, eps, y);
}

absl::Status Backend::LayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                float eps, Tensor* y) {
  constexpr absl::string_view kOp = "LayerNorm";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "weight", weight, x, device(), 1));
  RETURN_IF_ERROR(CheckLike(kOp, "bias", bias, x, device(), 1));
  RETURN_IF_ERROR(CheckLike(kOp, "y", *y, x, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "weight", weight, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "bias", bias, {x.dim(1)}));
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, x.shape()));
  return DoLayerNorm(x, weight, bias, eps, y);
}

absl::Status Backend::GeluInPlace(Tensor* x) {
  RETURN_IF_ERROR(CheckFloat("GeluInPlace", "x", *x, device(), -1));
  return DoGeluInPlace(x);
}

absl::Status Backend::SiluAndMul(const Tensor& x, Tensor* y) {
  constexpr absl::string_view kOp = "SiluAndMul";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", x, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "y", *y, x, device(), 2));
  if (x.dim(1) % 2 != 0) return Invalid(kOp, "x must have an even number of columns");
  RETURN_IF_ERROR(CheckShape(kOp, "y", *y, {x.dim(0), x.dim(1) / 2}));
  return DoSiluAndMul(x, y);
}

absl::Status Backend::AddInPlace(const Tensor& x, Tensor* acc) {
  RETURN_IF_ERROR(CheckFloat("AddInPlace", "x", x, device(), -1));
  RETURN_IF_ERROR(CheckLike("AddInPlace", "acc", *acc, x, device(), -1));
  RETURN_IF_ERROR(CheckShape("AddInPlace", "acc", *acc, x.shape()));
  return DoAddInPlace(x, acc);
}

absl::Status Backend::ScaleInPlace(float scale, Tensor* x) {
  RETURN_IF_ERROR(CheckFloat("ScaleInPlace", "x", *x, device(), -1));
  return DoScaleInPlace(scale, x);
}

// ---- data movement

absl::Status Backend::SplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  constexpr absl::string_view kOp = "SplitColumns";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", x, device(), 2));
  int64_t total = 0;
  for (Tensor* part : parts) {
    RETURN_IF_ERROR(CheckLike(kOp, "part", *part, x, device(), 2));
    if (part->dim(0) != x.dim(0)) return Invalid(kOp, "part rows differ from x rows");
    total += part->dim(1);
  }
  if (total != x.dim(1)) {
    return Invalid(kOp, absl::StrCat("parts have ", total, " columns, x has ", x.dim(1)));
  }
  return DoSplitColumns(x, parts);
}

absl::Status Backend::GatherRows(const Tensor& table, absl::Span<const int32_t> rows,
                                 Tensor* out) {
  constexpr absl::string_view kOp = "GatherRows";
  RETURN_IF_ERROR(CheckFloat(kOp, "table", table, device(), 2));
  for (int32_t r : rows) {
    if (r < 0 || r >= table.dim(0)) {
      return Invalid(kOp, absl::StrCat("row ", r, " outside [0, ", table.dim(0), ")"));
    }
  }
  ASSIGN_OR_RETURN(Tensor ids, UploadIndices(rows));
  return GatherRows(table, ids, out);
}

absl::Status Backend::GatherRows(const Tensor& table, const Tensor& rows, Tensor* out) {
  constexpr absl::string_view kOp = "GatherRows";
  RETURN_IF_ERROR(CheckFloat(kOp, "table", table, device(), 2));
  RETURN_IF_ERROR(CheckIndices(kOp, "rows", rows, device(), 1));
  RETURN_IF_ERROR(CheckFloat(kOp, "out", *out, device(), 2));
  RETURN_IF_ERROR(CheckShape(kOp, "out", *out, {rows.dim(0), table.dim(1)}));
  if (rows.dim(0) == 0) return absl::OkStatus();
  return DoGatherRows(table, rows, out);
}

absl::Status Backend::CopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                               int64_t dst_row) {
  constexpr absl::string_view kOp = "CopyRows";
  RETURN_IF_ERROR(CheckFloat(kOp, "src", src, device(), -1));
  RETURN_IF_ERROR(CheckFloat(kOp, "dst", *dst, device(), -1));
  if (src.ndim() < 1 || dst->ndim() < 1 || ColsOf(src) != ColsOf(*dst)) {
    return Invalid(kOp, absl::StrCat("row widths differ: ", src.DebugString(), " vs ",
                                     dst->DebugString()));
  }
  if (num_rows < 0 || src_row < 0 || dst_row < 0 || src_row + num_rows > RowsOf(src) ||
      dst_row + num_rows > RowsOf(*dst)) {
    return Invalid(kOp, "row range out of bounds");
  }
  if (num_rows == 0) return absl::OkStatus();
  return DoCopyRows(src, src_row, num_rows, dst, dst_row);
}

absl::Status Backend::PatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                  Tensor* cols) {
  constexpr absl::string_view kOp = "PatchIm2Col";
  RETURN_IF_ERROR(CheckFloat(kOp, "image", image, device(), 4));
  RETURN_IF_ERROR(CheckLike(kOp, "cols", *cols, image, device(), 2));
  const bool first = layout == ImageLayout::kChannelsFirst;
  const int64_t b = image.dim(0), c = first ? image.dim(1) : image.dim(3);
  const int64_t h = first ? image.dim(2) : image.dim(1), w = first ? image.dim(3) : image.dim(2);
  if (kernel <= 0 || h % kernel != 0 || w % kernel != 0) {
    return Invalid(kOp, absl::StrCat("image ", image.DebugString(), " not divisible by kernel ",
                                     kernel));
  }
  RETURN_IF_ERROR(
      CheckShape(kOp, "cols", *cols, {b * (h / kernel) * (w / kernel), c * kernel * kernel}));
  return DoPatchIm2Col(image, layout, kernel, cols);
}

// ---- attention

absl::Status Backend::ApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                                int rotary_dim, double base) {
  constexpr absl::string_view kOp = "ApplyRope";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", *x, device(), 2));
  if (static_cast<int64_t>(positions.size()) != x->dim(0)) {
    return Invalid(kOp, absl::StrCat(positions.size(), " positions for ", x->dim(0), " rows"));
  }
  ASSIGN_OR_RETURN(Tensor pos, UploadIndices(positions));
  return ApplyRope(x, pos, head_dim, rotary_dim, base);
}

absl::Status Backend::ApplyRope(Tensor* x, const Tensor& positions, int head_dim,
                                int rotary_dim, double base) {
  constexpr absl::string_view kOp = "ApplyRope";
  RETURN_IF_ERROR(CheckFloat(kOp, "x", *x, device(), 2));
  RETURN_IF_ERROR(CheckIndices(kOp, "positions", positions, device(), 1));
  if (positions.dim(0) != x->dim(0)) {
    return Invalid(kOp, absl::StrCat(positions.dim(0), " positions for ", x->dim(0), " rows"));
  }
  RETURN_IF_ERROR(CheckRopeArgs(kOp, *x, head_dim, rotary_dim, base));
  if (x->dim(0) == 0) return absl::OkStatus();
  return DoApplyRope(x, positions, head_dim, rotary_dim, base);
}

absl::Status Backend::Attention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                                int num_heads, int num_kv_heads, bool causal, float scale,
                                Tensor* out) {
  constexpr absl::string_view kOp = "Attention";
  RETURN_IF_ERROR(CheckFloat(kOp, "q", q, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "k", k, q, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "v", v, q, device(), 2));
  RETURN_IF_ERROR(CheckLike(kOp, "out", *out, q, device(), 2));
  if (batch <= 0 || q.dim(0) % batch != 0) return Invalid(kOp, "rows not divisible by batch");
  RETURN_IF_ERROR(CheckHeads(kOp, num_heads, num_kv_heads));
  if (q.dim(1) % num_heads != 0) return Invalid(kOp, "q width not divisible by num_heads");
  const int64_t d = q.dim(1) / num_heads;
  RETURN_IF_ERROR(CheckShape(kOp, "k", k, {q.dim(0), num_kv_heads * d}));
  RETURN_IF_ERROR(CheckShape(kOp, "v", v, {q.dim(0), num_kv_heads * d}));
  RETURN_IF_ERROR(CheckShape(kOp, "out", *out, q.shape()));
  if (q.dim(0) == 0) return absl::OkStatus();
  return DoAttention(q, k, v, batch, num_heads, num_kv_heads, causal, scale, out);
}

absl::Status Backend::WriteKvCache(const Tensor& k, const Tensor& v,
                                   absl::Span<const int32_t> slots, int layer,
                                   PagedKvCache* cache) {
  constexpr absl::string_view kOp = "WriteKvCache";
  RETURN_IF_ERROR(
      CheckKvRows(kOp, k, v, static_cast<int64_t>(slots.size()), layer, *cache, device()));
  const KvCacheShape& cs = cache->shape();
  const int64_t num_slots = static_cast<int64_t>(cs.num_blocks) * cs.block_size;
  for (int32_t s : slots) {
    if (s < 0 || s >= num_slots) {
      return Invalid(kOp, absl::StrCat("slot ", s, " outside [0, ", num_slots, ")"));
    }
  }
  ASSIGN_OR_RETURN(Tensor ids, UploadIndices(slots));
  return WriteKvCache(k, v, ids, layer, cache);
}

absl::Status Backend::WriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots,
                                   int layer, PagedKvCache* cache) {
  constexpr absl::string_view kOp = "WriteKvCache";
  RETURN_IF_ERROR(CheckIndices(kOp, "slots", slots, device(), 1));
  RETURN_IF_ERROR(CheckKvRows(kOp, k, v, slots.dim(0), layer, *cache, device()));
  if (slots.dim(0) == 0) return absl::OkStatus();
  return DoWriteKvCache(k, v, slots, layer, cache);
}

absl::Status Backend::PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                     absl::Span<const PagedSequence> sequences, int num_heads,
                                     float scale, Tensor* out, Tensor* lse, ContextShare share) {
  constexpr absl::string_view kOp = "PagedAttention";
  RETURN_IF_ERROR(CheckPagedQuery(kOp, q, cache, layer, num_heads, *out, device()));
  if (share.size < 1 || share.rank < 0 || share.rank >= share.size) {
    return Invalid(kOp, absl::StrCat("context share rank ", share.rank, " of ", share.size));
  }
  const KvCacheShape& cs = cache.shape();
  for (const PagedSequence& s : sequences) {
    if (s.query_begin < 0 || s.num_queries < 0 || s.num_cached < 0 ||
        s.query_begin + s.num_queries > q.dim(0)) {
      return Invalid(kOp, "sequence query rows out of range");
    }
    const int64_t total = share.LocalTokens(s.num_cached + s.num_queries);
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
  ASSIGN_OR_RETURN(const PagedBatch batch,
                   UploadPagedBatch(PagedBatchHost::From(sequences, share)));
  return PagedAttention(q, cache, layer, batch, num_heads, scale, out, lse);
}

absl::Status Backend::PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                     const PagedBatch& batch, int num_heads, float scale,
                                     Tensor* out, Tensor* lse) {
  constexpr absl::string_view kOp = "PagedAttention";
  RETURN_IF_ERROR(CheckPagedQuery(kOp, q, cache, layer, num_heads, *out, device()));
  if (batch.share.size < 1 || batch.share.rank < 0 || batch.share.rank >= batch.share.size) {
    return Invalid(kOp, absl::StrCat("context share rank ", batch.share.rank, " of ",
                                     batch.share.size));
  }
  if (lse != nullptr) {
    if (lse->dtype() != DType::kF32) return Invalid(kOp, "lse must be f32");
    RETURN_IF_ERROR(CheckFloat(kOp, "lse", *lse, device(), 2));
    RETURN_IF_ERROR(CheckShape(kOp, "lse", *lse, {q.dim(0), num_heads}));
  }
  RETURN_IF_ERROR(CheckIndices(kOp, "sequences", batch.sequences, device(), 2));
  if (batch.sequences.dim(1) != 4) return Invalid(kOp, "sequences must be [num_seqs, 4]");
  RETURN_IF_ERROR(CheckIndices(kOp, "block_tables", batch.block_tables, device(), 1));
  if (batch.max_num_queries < 0 || batch.max_kv_len < 0) {
    return Invalid(kOp, "negative bounds");
  }
  if (batch.sequences.dim(0) == 0 || q.dim(0) == 0) return absl::OkStatus();
  return DoPagedAttention(q, cache, layer, batch, num_heads, scale, out, lse);
}

absl::Status Backend::Argmax(const Tensor& x, std::vector<int32_t>* out) {
  RETURN_IF_ERROR(CheckFloat("Argmax", "x", x, device(), 2));
  if (x.dim(1) == 0) return Invalid("Argmax", "no columns");
  return DoArgmax(x, out);
}

absl::StatusOr<SampledRows> Backend::SampleRows(Tensor* logits, const SamplingBatchHost& batch) {
  if (logits == nullptr) return Invalid("SampleRows", "logits is null");
  if (logits->dtype() != DType::kF32) return Invalid("SampleRows", "logits must be f32");
  RETURN_IF_ERROR(CheckFloat("SampleRows", "logits", *logits, device(), 2));
  if (logits->dim(1) == 0) return Invalid("SampleRows", "no columns");
  RETURN_IF_ERROR(ValidateSamplingBatch(batch, logits->dim(0), logits->dim(1)));
  if (logits->dim(0) == 0) return SampledRows{};
  return DoSampleRows(logits, batch);
}

absl::StatusOr<SampledRows> Backend::DoSampleRows(Tensor*, const SamplingBatchHost&) {
  return absl::UnimplementedError(
      absl::StrCat("backend ", name(), " does not sample on the device"));
}

}  // namespace glm4v

