#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_generic.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"

namespace glm4v::cuda {
namespace {

using bf16 = __nv_bfloat16;

int64_t Rows(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(0); }
int64_t Cols(const Tensor& t) { return Rows(t) == 0 ? 0 : t.numel() / Rows(t); }

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat("no CUDA device: ", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices"));
  }
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device ", device, " of ", count));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  int num_sms = 0;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, device));
  cudaStream_t stream;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  absl::StatusOr<DeviceAllocator*> alloc = DeviceAllocator::Create(device, stream);
  if (!alloc.ok()) {
    cudaStreamDestroy(stream);
    return alloc.status();
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend(device, stream, *alloc, num_sms));
  RETURN_IF_ERROR(backend->gemm_.Init());
  return backend;
}

CudaBackend::CudaBackend(int device, cudaStream_t stream, DeviceAllocator* allocator, int num_sms)
    : device_(device), stream_(stream), allocator_(allocator), num_sms_(num_sms) {}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(stream_);
  // Tensors still alive free on this stream later; leak the stream rather than invalidate them.
  allocator_.release();
}

void CudaBackend::Note(absl::Status status) {
  if (status.ok()) return;
  absl::MutexLock lock(&mu_);
  if (error_.ok()) error_ = std::move(status);
}

absl::Status CudaBackend::Synchronize() {
  Note(CUDA_STATUS(cudaStreamSynchronize(stream_)));
  absl::MutexLock lock(&mu_);
  return std::exchange(error_, absl::OkStatus());
}

Tensor CudaBackend::Empty(DType dtype, Shape shape) {
  absl::StatusOr<Tensor> t = allocator_->Allocate(dtype, std::move(shape));
  if (!t.ok()) {
    Note(t.status());
    return Tensor();
  }
  return *std::move(t);
}

absl::StatusOr<Tensor> CudaBackend::Upload(const Tensor& host) {
  if (host.device() != Device::kCpu) return absl::InvalidArgumentError("Upload: not a host tensor");
  const Tensor f32 = host.dtype() == DType::kF32 && host.is_contiguous() ? host : host.ToF32();
  return CopyToDevice(*allocator_, f32);
}

absl::StatusOr<Tensor> CudaBackend::UploadBF16(const Tensor& host) {
  if (host.device() != Device::kCpu) return absl::InvalidArgumentError("Upload: not a host tensor");
  if (host.dtype() == DType::kBF16 && host.is_contiguous()) return CopyToDevice(*allocator_, host);
  const Tensor f32 = host.dtype() == DType::kF32 && host.is_contiguous() ? host : host.ToF32();
  return CopyToDevice(*allocator_, f32.ToBF16());
}

absl::StatusOr<Tensor> CudaBackend::Download(const Tensor& device_tensor) {
  if (device_tensor.device() != Device::kCuda) {
    return absl::InvalidArgumentError("Download: not a device tensor");
  }
  RETURN_IF_ERROR(Synchronize());
  ASSIGN_OR_RETURN(Tensor host, CopyToHost(device_tensor, stream_));
  if (host.dtype() == DType::kF32 || host.dtype() == DType::kI32) return host;
  return host.ToF32();
}

absl::StatusOr<Tensor> CudaBackend::UploadI32(absl::Span<const int32_t> values) {
  ASSIGN_OR_RETURN(Tensor t,
                   allocator_->Allocate(DType::kI32, {static_cast<int64_t>(values.size())}));
  if (!values.empty()) {
    // Pageable source: cudaMemcpyAsync returns once the bytes are staged, so `values` may die.
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(t.raw_data(), values.data(),
                                         values.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                                         stream_));
  }
  return t;
}

absl::StatusOr<Tensor> CudaBackend::ToBF16(const Tensor& x) {
  ASSIGN_OR_RETURN(Tensor out, allocator_->Allocate(DType::kBF16, x.shape()));
  CUDA_RETURN_IF_ERROR(
      F32ToBF16(x.data<float>(), out.data<bf16>(), x.numel(), stream_));
  return out;
}

absl::Status CudaBackend::FromBF16(const Tensor& x_bf16, Tensor* out_f32) {
  CUDA_RETURN_IF_ERROR(
      BF16ToF32(x_bf16.data<bf16>(), out_f32->data<float>(), x_bf16.numel(), stream_));
  return absl::OkStatus();
}

void CudaBackend::DoLinear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor* y) {
  GemmArgs args;
  args.m = x.dim(0);
  args.n = weight.dim(0);
  args.k = x.dim(1);
  args.in_type = DType::kF32;
  args.out_type = DType::kF32;
  args.x = x.raw_data();
  args.w = weight.raw_data();
  args.bias = bias != nullptr ? bias->raw_data() : nullptr;
  args.y = y->raw_data();
  Note(gemm_.Run(args, stream_));
}

void CudaBackend::DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) {
  Note(CUDA_STATUS(cuda::RmsNorm<float>(x.data<float>(), nullptr, weight.data<float>(), eps, x.dim(0),
                                  x.dim(1), y->data<float>(), stream_)));
}

void CudaBackend::DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                              float eps, Tensor* y) {
  Note(CUDA_STATUS(cuda::LayerNorm<float>(x.data<float>(), weight.data<float>(), bias.data<float>(),
                                    eps, x.dim(0), x.dim(1), y->data<float>(), nullptr,
                                    stream_)));
}

void CudaBackend::DoGeluInPlace(Tensor* x) {
  Note(CUDA_STATUS(cuda::Gelu<float>(x->data<float>(), x->data<float>(), x->numel(), stream_)));
}

void CudaBackend::DoSiluAndMul(const Tensor& x, Tensor* y) {
  Note(CUDA_STATUS(
      cuda::SiluAndMul<float>(x.data<float>(), y->data<float>(), x.dim(0), y->dim(1), stream_)));
}

void CudaBackend::DoAddInPlace(const Tensor& x, Tensor* acc) {
  Note(CUDA_STATUS(cuda::Add<float>(x.data<float>(), acc->data<float>(), x.numel(), stream_)));
}

void CudaBackend::DoScaleInPlace(float scale, Tensor* x) {
  Note(CUDA_STATUS(cuda::Scale<float>(x->data<float>(), x->numel(), scale, stream_)));
}

void CudaBackend::DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) {
  const int64_t rows = x.dim(0), width = x.dim(1);
  int64_t col = 0;
  for (Tensor* part : parts) {
    const int64_t c = part->dim(1);
    if (rows > 0 && c > 0) {
      Note(CUDA_STATUS(cudaMemcpy2DAsync(part->raw_data(), c * sizeof(float),
                                         x.data<float>() + col, width * sizeof(float),
                                         c * sizeof(float), rows, cudaMemcpyDeviceToDevice,
                                         stream_)));
    }
    col += c;
  }
}

void CudaBackend::DoGatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out) {
  if (rows.empty()) return;
  absl::StatusOr<Tensor> ids = UploadI32(rows);
  if (!ids.ok()) return Note(ids.status());
  Note(CUDA_STATUS(cuda::GatherRows<float>(table.data<float>(), table.dim(0), table.dim(1),
                                     ids->data<int32_t>(), static_cast<int64_t>(rows.size()),
                                     out->data<float>(), stream_)));
}

void CudaBackend::DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                             int64_t dst_row) {
  const int64_t cols = Cols(src);
  if (num_rows == 0 || cols == 0) return;
  Note(CUDA_STATUS(cudaMemcpyAsync(dst->data<float>() + dst_row * cols,
                                   src.data<float>() + src_row * cols,
                                   num_rows * cols * sizeof(float), cudaMemcpyDeviceToDevice,
                                   stream_)));
}

void CudaBackend::DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                Tensor* cols) {
  const bool last = layout == ImageLayout::kChannelsLast;
  const int64_t b = image.dim(0), c = last ? image.dim(3) : image.dim(1);
  const int64_t h = last ? image.dim(1) : image.dim(2), w = last ? image.dim(2) : image.dim(3);
  Note(CUDA_STATUS(cuda::PatchIm2Col<float>(image.data<float>(), last, b, c, h, w, kernel,
                                      cols->data<float>(), stream_)));
}

void CudaBackend::DoApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                              int rotary_dim, double base) {
  if (positions.empty()) return;
  absl::StatusOr<Tensor> pos = UploadI32(positions);
  if (!pos.ok()) return Note(pos.status());
  RopeParams p;
  p.num_heads = static_cast<int>(x->dim(1) / head_dim);
  p.head_dim = head_dim;
  p.rotary_dim = rotary_dim;
  p.base = base;
  Note(CUDA_STATUS(cuda::ApplyRope<float>(x->data<float>(), x->dim(1), x->dim(0),
                                    pos->data<int32_t>(), p, stream_)));
}

absl::Status CudaBackend::RunAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const std::vector<AttnSequence>& seqs, int max_num_q,
                                       int max_kv_len, int num_heads, int num_kv_heads,
                                       bool causal, float scale, Tensor* out) {
  const int head_dim = static_cast<int>(q.dim(1) / num_heads);
  if (seqs.empty() || q.dim(0) == 0) return absl::OkStatus();
  const int64_t seq_bytes = static_cast<int64_t>(seqs.size() * sizeof(AttnSequence));
  ASSIGN_OR_RETURN(Tensor seq_dev, allocator_->Allocate(DType::kU8, {seq_bytes}));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(seq_dev.raw_data(), seqs.data(), seq_bytes,
                                       cudaMemcpyHostToDevice, stream_));
  if (!AttentionHeadDimSupported(head_dim)) {
    if (head_dim > kGenericAttentionMaxHeadDim) {
      return absl::UnimplementedError(absl::StrCat("CUDA attention: head_dim ", head_dim, " > ",
                                                   kGenericAttentionMaxHeadDim));
    }
    // Head dims without a tensor-core instantiation run the plain f32 kernel on the f32
    // operands directly.
    GenericAttnParams g;
    g.q = q.data<float>();
    g.q_stride = q.dim(1);
    g.k = k.data<float>();
    g.v = v.data<float>();
    g.kv_stride = k.dim(1);
    g.out = out->data<float>();
    g.out_stride = out->dim(1);
    g.seqs = static_cast<const AttnSequence*>(seq_dev.raw_data());
    g.num_seqs = static_cast<int>(seqs.size());
    g.max_num_q = max_num_q;
    g.num_heads = num_heads;
    g.num_kv_heads = num_kv_heads;
    g.head_dim = head_dim;
    g.causal = causal;
    g.scale = scale;
    CUDA_RETURN_IF_ERROR(GenericAttention(g, stream_));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Tensor q16, ToBF16(q));
  ASSIGN_OR_RETURN(Tensor k16, ToBF16(k));
  ASSIGN_OR_RETURN(Tensor v16, ToBF16(v));
  ASSIGN_OR_RETURN(Tensor out16, allocator_->Allocate(DType::kBF16, out->shape()));
  AttnParams p;
  p.q = q16.data<bf16>();
  p.q_stride = q.dim(1);
  p.k = k16.data<bf16>();
  p.v = v16.data<bf16>();
  p.kv_stride = k.dim(1);
  p.out = out16.data<bf16>();
  p.out_stride = q.dim(1);
  p.seqs = static_cast<const AttnSequence*>(seq_dev.raw_data());
  p.num_seqs = static_cast<int>(seqs.size());
  p.max_num_q = max_num_q;
  p.max_kv_len = max_kv_len;
  p.total_q_rows = static_cast<int>(q.dim(0));
  p.num_heads = num_heads;
  p.num_kv_heads = num_kv_heads;
  p.head_dim = head_dim;
  p.causal = causal;
  p.scale = scale;
  p.num_splits = SuggestAttentionSplits(p, num_sms_);
  Tensor workspace;
  if (p.num_splits > 1) {
    const size_t bytes = AttentionWorkspaceBytes(p.num_splits, p.total_q_rows, num_heads, head_dim);
    ASSIGN_OR_RETURN(workspace, allocator_->Allocate(DType::kF32,
                                                     {static_cast<int64_t>(bytes / sizeof(float))}));
    p.workspace = workspace.data<float>();
  }
  CUDA_RETURN_IF_ERROR(FlashAttention(p, stream_));
  return FromBF16(out16, out);
}

void CudaBackend::DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                              int num_heads, int num_kv_heads, bool causal, float scale,
                              Tensor* out) {
  const int len = static_cast<int>(q.dim(0) / batch);
  std::vector<AttnSequence> seqs(batch);
  for (int b = 0; b < batch; ++b) seqs[b] = AttnSequence{b * len, len, len, b * len};
  Note(RunAttention(q, k, v, seqs, len, len, num_heads, num_kv_heads, causal, scale, out));
}

void CudaBackend::DoWriteKvCache(const Tensor& k, const Tensor& v,
                                 absl::Span<const int32_t> slots, int layer,
                                 PagedKvCache* cache) {
  // The interface's cache lives in host memory: bring the rows over and scatter them there.
  absl::StatusOr<Tensor> hk = Download(k);
  if (!hk.ok()) return Note(hk.status());
  absl::StatusOr<Tensor> hv = Download(v);
  if (!hv.ok()) return Note(hv.status());
  const KvCacheShape& cs = cache->shape();
  const int64_t width = static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim;
  for (size_t i = 0; i < slots.size(); ++i) {
    const int block = slots[i] / cs.block_size, offset = slots[i] % cs.block_size;
    std::memcpy(cache->key_block(layer, block) + offset * width, hk->data<float>() + i * width,
                width * sizeof(float));
    std::memcpy(cache->value_block(layer, block) + offset * width, hv->data<float>() + i * width,
                width * sizeof(float));
  }
}

void CudaBackend::DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                   absl::Span<const PagedSequence> sequences, int num_heads,
                                   float scale, Tensor* out) {
  // Gather each sequence's keys from the host cache into one contiguous device buffer, then run
  // the same kernel as the contiguous case (new queries are the last positions: causal shift).
  const KvCacheShape& cs = cache.shape();
  const int64_t width = static_cast<int64_t>(cs.num_kv_heads) * cs.head_dim;
  int64_t total_keys = 0;
  for (const PagedSequence& s : sequences) total_keys += s.num_cached + s.num_queries;
  if (total_keys == 0) return;
  Tensor hk = Tensor::Empty(DType::kF32, {total_keys, width});
  Tensor hv = Tensor::Empty(DType::kF32, {total_keys, width});
  std::vector<AttnSequence> seqs;
  int max_q = 0, max_kv = 0;
  int64_t row = 0;
  for (const PagedSequence& s : sequences) {
    const int64_t len = s.num_cached + s.num_queries;
    seqs.push_back(AttnSequence{static_cast<int32_t>(s.query_begin),
                                static_cast<int32_t>(s.num_queries), static_cast<int32_t>(len),
                                static_cast<int32_t>(row)});
    max_q = std::max<int>(max_q, static_cast<int>(s.num_queries));
    max_kv = std::max<int>(max_kv, static_cast<int>(len));
    for (int64_t t = 0; t < len; ++t, ++row) {
      const int block = s.block_table[t / cs.block_size];
      const int64_t offset = (t % cs.block_size) * width;
      std::memcpy(hk.data<float>() + row * width, cache.key_block(layer, block) + offset,
                  width * sizeof(float));
      std::memcpy(hv.data<float>() + row * width, cache.value_block(layer, block) + offset,
                  width * sizeof(float));
    }
  }
  absl::StatusOr<Tensor> dk = CopyToDevice(*allocator_, hk);
  if (!dk.ok()) return Note(dk.status());
  absl::StatusOr<Tensor> dv = CopyToDevice(*allocator_, hv);
  if (!dv.ok()) return Note(dv.status());
  Note(RunAttention(q, *dk, *dv, seqs, max_q, max_kv, num_heads, cs.num_kv_heads,
                    /*causal=*/true, scale, out));
}

void CudaBackend::DoArgmax(const Tensor& x, std::vector<int32_t>* out) {
  out->assign(x.dim(0), 0);
  if (x.dim(0) == 0) return;
  absl::StatusOr<Tensor> ids = allocator_->Allocate(DType::kI32, {x.dim(0)});
  if (!ids.ok()) return Note(ids.status());
  Note(CUDA_STATUS(
      cuda::ArgmaxRows<float>(x.data<float>(), x.dim(0), x.dim(1), ids->data<int32_t>(), stream_)));
  Note(CUDA_STATUS(cudaMemcpyAsync(out->data(), ids->raw_data(), x.dim(0) * sizeof(int32_t),
                                   cudaMemcpyDeviceToHost, stream_)));
  Note(CUDA_STATUS(cudaStreamSynchronize(stream_)));
}

absl::StatusOr<Backend*> GetCudaBackend() {
  static absl::StatusOr<std::unique_ptr<CudaBackend>>* backend =
      new absl::StatusOr<std::unique_ptr<CudaBackend>>(CudaBackend::Create(0));
  if (!backend->ok()) return backend->status();
  return backend->value().get();
}

}  // namespace glm4v::cuda
