#include "kernels/cpu/cpu_backend.h"

#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cpu/cpu_kernels.h"

namespace glm4v {
namespace {

// Activations on the CPU are f32 (activation_dtype()); ops.cc already checked that every
// activation operand of the op shares x's dtype.
absl::Status F32Activations(absl::string_view op, const Tensor& x) {
  if (x.dtype() == DType::kF32) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(
      "cpu ", op, ": activations must be f32 on the CPU backend, got ", x.DebugString(),
      " (bf16 is only a storage dtype here: weights, embedding tables, KV cache)"));
}

// A host KV cache stored as f32 or bf16 (AllocateKvCache or the host constructor).
absl::Status CheckCacheStorage(absl::string_view op, const PagedKvCache& cache, int layer) {
  const Tensor& keys = cache.key_tensor(layer);
  if (cache.dtype() != DType::kF32 && cache.dtype() != DType::kBF16) {
    return absl::UnimplementedError(absl::StrCat("cpu ", op, ": KV cache of ",
                                                 std::string(DTypeName(cache.dtype())),
                                                 " (want f32 or bf16)"));
  }
  if (!keys.defined() || !cache.value_tensor(layer).defined()) {
    return absl::InvalidArgumentError(absl::StrCat("cpu ", op, ": KV cache layer ", layer,
                                                   " has no storage"));
  }
  return absl::OkStatus();
}

// The tensor-form index inputs are trusted by the interface; the CPU checks the ones that
// address memory anyway (cheap, and a bad index would silently corrupt the heap).
absl::Status IndexOutOfRange(absl::string_view op, absl::string_view what, int64_t value,
                             int64_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat("cpu ", op, ": ", what, " ", value, " outside [0, ", limit, ")"));
}

absl::Status CheckPagedBatchContents(const PagedBatch& batch, int64_t q_rows,
                                     const KvCacheShape& cs) {
  constexpr absl::string_view kOp = "PagedAttention";
  const int32_t* seqs = batch.sequences.data<int32_t>();
  const int32_t* tables = batch.block_tables.data<int32_t>();
  const int64_t entries = batch.block_tables.numel();
  for (int64_t s = 0; s < batch.sequences.dim(0); ++s) {
    const int64_t begin = seqs[s * 4], num_queries = seqs[s * 4 + 1];
    const int64_t kv_len = seqs[s * 4 + 2], table_begin = seqs[s * 4 + 3];
    if (num_queries == 0) continue;
    if (begin < 0 || num_queries < 0 || begin + num_queries > q_rows || kv_len < num_queries) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cpu ", kOp, ": sequence ", s, " (query_begin ", begin, ", num_queries ", num_queries,
          ", kv_len ", kv_len, ") does not fit ", q_rows, " query rows"));
    }
    const int64_t blocks = (batch.share.LocalTokens(kv_len) + cs.block_size - 1) / cs.block_size;
    if (table_begin < 0 || table_begin + blocks > entries) {
      return IndexOutOfRange(kOp, "block table end", table_begin + blocks, entries + 1);
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const int32_t id = tables[table_begin + b];
      if (id < 0 || id >= cs.num_blocks) return IndexOutOfRange(kOp, "block id", id, cs.num_blocks);
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t CpuBackend::free_memory_bytes() const {
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<int64_t>(pages) * page_size;
}

Tensor CpuBackend::Empty(DType dtype, Shape shape) { return Tensor::Empty(dtype, std::move(shape)); }

absl::StatusOr<Tensor> CpuBackend::DoUpload(const Tensor& host, DType storage) {
  if (!host.is_contiguous()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cpu Upload: needs a contiguous tensor, got ", host.DebugString()));
  }
  if (host.dtype() == storage) return host;
  switch (storage) {
    case DType::kF32:
      return host.ToF32();
    case DType::kBF16:
      return host.dtype() == DType::kF32 ? host.ToBF16() : host.ToF32().ToBF16();
    default:  // i32 storage of an i32 tensor is the view above (ops.cc validated the pair)
      return absl::InvalidArgumentError(absl::StrCat("cpu Upload: cannot store ",
                                                     host.DebugString(), " as ",
                                                     std::string(DTypeName(storage))));
  }
}

absl::StatusOr<Tensor> CpuBackend::Download(const Tensor& device_tensor) {
  if (!device_tensor.defined() || device_tensor.device() != Device::kCpu) {
    return absl::InvalidArgumentError("cpu Download: need a defined host tensor");
  }
  switch (device_tensor.dtype()) {
    case DType::kF32:
    case DType::kBF16:
    case DType::kF16:
      return DoUpload(device_tensor, DType::kF32);
    case DType::kI32:
      return DoUpload(device_tensor, DType::kI32);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cpu Download: unsupported dtype ", device_tensor.DebugString()));
  }
}

absl::Status CpuBackend::DoZeroFill(Tensor* t) {
  if (t->nbytes() > 0) std::memset(t->raw_data(), 0, t->nbytes());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoWriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                                        int64_t offset) {
  std::memcpy(dst->data<int32_t>() + offset, values.data(), values.size() * sizeof(int32_t));
  return absl::OkStatus();
}

absl::Status CpuBackend::DoLinear(const Tensor& x, const LinearWeight& weight,
                                  const Tensor* bias, Tensor* y, bool accumulate) {
  RETURN_IF_ERROR(F32Activations("Linear", x));
  RETURN_IF_ERROR(F32Activations("Linear", *y));
  const float* b = bias == nullptr ? nullptr : bias->data<float>();
  if (weight.quantized()) {
    cpu::LinearQuantized(x.data<float>(), weight, b, x.dim(0), accumulate, y->data<float>());
    return absl::OkStatus();
  }
  cpu::Linear(x.data<float>(), weight.values.raw_data(), weight.values.dtype(), b, x.dim(0),
              weight.out_features(), x.dim(1), accumulate, y->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) {
  RETURN_IF_ERROR(F32Activations("RmsNorm", x));
  cpu::RmsNorm(x.data<float>(), weight.data<float>(), x.dim(0), x.dim(1), eps, y->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     float eps, Tensor* y) {
  RETURN_IF_ERROR(F32Activations("LayerNorm", x));
  cpu::LayerNorm(x.data<float>(), weight.data<float>(), bias.data<float>(), x.dim(0), x.dim(1),
                 eps, y->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoGeluInPlace(Tensor* x) {
  RETURN_IF_ERROR(F32Activations("GeluInPlace", *x));
  cpu::Gelu(x->data<float>(), x->numel());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoSiluAndMul(const Tensor& x, Tensor* y) {
  RETURN_IF_ERROR(F32Activations("SiluAndMul", x));
  cpu::SiluAndMul(x.data<float>(), x.dim(0), y->dim(1), y->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoAddInPlace(const Tensor& x, Tensor* acc) {
  RETURN_IF_ERROR(F32Activations("AddInPlace", x));
  cpu::Add(x.data<float>(), x.numel(), acc->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoScaleInPlace(float scale, Tensor* x) {
  RETURN_IF_ERROR(F32Activations("ScaleInPlace", *x));
  cpu::Scale(scale, x->numel(), x->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  RETURN_IF_ERROR(F32Activations("SplitColumns", x));
  int64_t col = 0;
  for (Tensor* part : parts) {
    cpu::CopyColumns(x.data<float>(), x.dim(0), x.dim(1), col, part->dim(1), part->data<float>());
    col += part->dim(1);
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::DoGatherRows(const Tensor& table, const Tensor& rows, Tensor* out) {
  RETURN_IF_ERROR(F32Activations("GatherRows", *out));
  const int32_t* ids = rows.data<int32_t>();
  for (int64_t i = 0; i < rows.dim(0); ++i) {
    if (ids[i] < 0 || ids[i] >= table.dim(0)) {
      return IndexOutOfRange("GatherRows", "row", ids[i], table.dim(0));
    }
  }
  cpu::GatherRows(table.raw_data(), table.dtype(), table.dim(1), ids, rows.dim(0),
                  out->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows,
                                    Tensor* dst, int64_t dst_row) {
  RETURN_IF_ERROR(F32Activations("CopyRows", *dst));
  const int64_t cols = src.numel() / src.dim(0);  // ops.cc: src has >= 1 row here
  const auto* from = static_cast<const unsigned char*>(src.raw_data()) +
                     src_row * cols * DTypeSize(src.dtype());
  cpu::ConvertToF32(from, src.dtype(), num_rows * cols, dst->data<float>() + dst_row * cols);
  return absl::OkStatus();
}

absl::Status CpuBackend::DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                       Tensor* cols) {
  RETURN_IF_ERROR(F32Activations("PatchIm2Col", image));
  const bool first = layout == ImageLayout::kChannelsFirst;
  cpu::PatchIm2Col(image.data<float>(), image.dim(0), first ? image.dim(1) : image.dim(3),
                   first ? image.dim(2) : image.dim(1), first ? image.dim(3) : image.dim(2),
                   layout, kernel, cols->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoApplyRope(Tensor* x, const Tensor& positions, int head_dim,
                                     int rotary_dim, double base) {
  RETURN_IF_ERROR(F32Activations("ApplyRope", *x));
  cpu::ApplyRope(x->data<float>(), x->dim(0), x->dim(1) / head_dim, head_dim, rotary_dim,
                 positions.data<int32_t>(), base);
  return absl::OkStatus();
}

absl::Status CpuBackend::DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                                     int num_heads, int num_kv_heads, bool causal, float scale,
                                     Tensor* out) {
  RETURN_IF_ERROR(F32Activations("Attention", q));
  cpu::Attention(q.data<float>(), k.data<float>(), v.data<float>(), batch, q.dim(0) / batch,
                 num_heads, num_kv_heads, static_cast<int>(q.dim(1) / num_heads), causal, scale,
                 out->data<float>());
  return absl::OkStatus();
}

absl::Status CpuBackend::DoWriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots,
                                        int layer, PagedKvCache* cache) {
  RETURN_IF_ERROR(F32Activations("WriteKvCache", k));
  RETURN_IF_ERROR(CheckCacheStorage("WriteKvCache", *cache, layer));
  const KvCacheShape& cs = cache->shape();
  const int64_t num_slots = static_cast<int64_t>(cs.num_blocks) * cs.block_size;
  const int32_t* ids = slots.data<int32_t>();
  for (int64_t i = 0; i < slots.dim(0); ++i) {
    if (ids[i] >= num_slots) return IndexOutOfRange("WriteKvCache", "slot", ids[i], num_slots);
  }
  cpu::WriteKvCache(k.data<float>(), v.data<float>(), ids, slots.dim(0), layer, cache);
  return absl::OkStatus();
}

absl::Status CpuBackend::DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                          const PagedBatch& batch, int num_heads, float scale,
                                          Tensor* out, Tensor* lse) {
  RETURN_IF_ERROR(F32Activations("PagedAttention", q));
  RETURN_IF_ERROR(CheckCacheStorage("PagedAttention", cache, layer));
  RETURN_IF_ERROR(CheckPagedBatchContents(batch, q.dim(0), cache.shape()));
  cpu::PagedAttention(q.data<float>(), cache, layer, batch.sequences.data<int32_t>(),
                      batch.sequences.dim(0), batch.block_tables.data<int32_t>(), num_heads,
                      scale, out->data<float>(), lse != nullptr ? lse->data<float>() : nullptr,
                      batch.share);
  return absl::OkStatus();
}

absl::Status CpuBackend::DoArgmax(const Tensor& x, std::vector<int32_t>* out) {
  RETURN_IF_ERROR(F32Activations("Argmax", x));
  out->resize(x.dim(0));
  cpu::Argmax(x.data<float>(), x.dim(0), x.dim(1), out->data());
  return absl::OkStatus();
}

}  // namespace glm4v
