// The op interface every compute backend implements (CPU reference, CUDA).
//
// Model code (vision tower, decoder) is written once against `Backend` and never touches raw
// memory: activations and weights are Tensors living on the backend's device (allocated with
// Empty(), weights moved there with Upload()).
//
// Dtypes. Activations are in the backend's activation_dtype() (f32 on the CPU, bf16 on CUDA);
// every activation operand of one op has the same dtype. Weight matrices (Linear weights,
// GatherRows tables) may be stored in another float dtype (bf16 weights under f32 activations
// on the CPU); Linear's y may be f32 under bf16 x (logits). Norm weights and biases are in the
// dtype of the op's output. A backend returns UNIMPLEMENTED for dtype combinations it lacks.
//
// Per-step integer inputs (token ids, positions, KV slots, block tables) come in two forms:
// host spans (validated element by element; a device backend uploads them per call), or i32
// tensors already on the device (`StepIndices`-style: uploaded once per step with
// WriteIndices() into buffers the caller keeps, so a captured CUDA graph can replay with new
// contents). The tensor forms trust their contents: the caller validated them on the host.
//
// Public methods are non-virtual: they validate dtypes/shapes once for all backends and then
// call the backend's `Do*` implementation, which may assume valid arguments and returns
// asynchronous-execution errors it can see (a device backend may also report them later, from
// Synchronize()).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tensor.h"
#include "kernels/linear_weight.h"
#include "kernels/sampling_batch.h"
#include "model/kv_cache.h"

namespace glm4v {

// One sequence of a paged attention call: its new query rows attend (causally) to the
// `num_cached` tokens already in the cache plus themselves (which must already be written).
struct PagedSequence {
  int64_t query_begin = 0;   // first row of this sequence in q / out
  int64_t num_queries = 0;   // new tokens of this step
  int64_t num_cached = 0;    // tokens in the cache before this step
  absl::Span<const int32_t> block_table;
};

// Decode context parallelism: the KV cache of this rank holds only the tokens i with
// i % size == rank of every sequence (token i is the rank's local token i / size, at block
// table[(i / size) / block_size], slot (i / size) % block_size). Attention over that share gives
// a partial result that the ranks of the share merge by their log-sum-exp
// (model/context_parallel_attention.h).
struct ContextShare {
  int size = 1;
  int rank = 0;
  // Tokens of a sequence's first `tokens` (global indices [0, tokens)) held by this rank.
  int64_t LocalTokens(int64_t tokens) const {
    return tokens > rank ? (tokens - rank - 1) / size + 1 : 0;
  }
  bool operator==(const ContextShare& o) const { return size == o.size && rank == o.rank; }
};

// The device form of a list of PagedSequence (see the header comment).
struct PagedBatch {
  // i32 [num_seqs, 4], one row per sequence: query_begin, num_queries, kv_len (= num_cached +
  // num_queries), table_begin (offset of its block table in `block_tables`). The layout is
  // kernels/cuda/attention.h's AttnSequence. A row with num_queries = 0 is skipped.
  Tensor sequences;
  // i32 [entries]: every sequence's block table, concatenated.
  Tensor block_tables;
  // Host-side upper bounds (grid and split sizing); larger values are correct, just slower.
  int max_num_queries = 0;
  int max_kv_len = 0;
  // kv_len and the block tables count global tokens; the cache holds this rank's share.
  ContextShare share;
};

// Host form of a PagedBatch: PagedBatchHost::From(sequences) flattens PagedSequence lists.
struct PagedBatchHost {
  std::vector<int32_t> sequences;     // num_seqs * 4, as PagedBatch::sequences
  std::vector<int32_t> block_tables;
  int max_num_queries = 0;
  int max_kv_len = 0;
  ContextShare share;

  static PagedBatchHost From(absl::Span<const PagedSequence> sequences,
                             ContextShare share = {});
  int num_sequences() const { return static_cast<int>(sequences.size() / 4); }
};

// Memory layout of the input of PatchIm2Col.
enum class ImageLayout : uint8_t {
  kChannelsFirst,  // [batch, channels, height, width] (pixels)
  kChannelsLast,   // [batch, height, width, channels] (a token grid)
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual absl::string_view name() const = 0;
  virtual Device device() const = 0;
  // The dtype model code allocates activations in (and the default for weights and the KV
  // cache): f32 on the CPU, bf16 on CUDA.
  virtual DType activation_dtype() const { return DType::kF32; }

  // ---- memory
  // Uninitialized tensor on this backend's device (any dtype).
  virtual Tensor Empty(DType dtype, Shape shape) = 0;
  // A copy (or, on the CPU, possibly a view) of a host tensor on this device, stored as
  // `storage` (f32, bf16, i32 or u8; float dtypes convert, i32 and u8 need a source of theirs).
  absl::StatusOr<Tensor> Upload(const Tensor& host, DType storage = DType::kF32);
  // A host LinearWeight on this device: a float matrix stored as `float_storage`, quantized
  // values and zero points as bytes, scales as f32.
  absl::StatusOr<LinearWeight> UploadLinearWeight(const LinearWeight& host, DType float_storage);
  // A host copy of a device tensor: float dtypes come back as f32, i32 stays i32.
  virtual absl::StatusOr<Tensor> Download(const Tensor& device_tensor) = 0;
  // Sets every element of a device tensor to zero.
  absl::Status ZeroFill(Tensor* t);
  // dst[offset + i] = values[i]: host ints into an existing i32 device tensor (1-d or any
  // contiguous shape, indexed flat), keeping its address (graph replay inputs).
  absl::Status WriteIndices(absl::Span<const int32_t> values, Tensor* dst, int64_t offset = 0);
  // Memory still free on this device (bytes): what a fraction-based KV cache budget is taken
  // from after the weights are loaded; 0 when unknown.
  virtual int64_t free_memory_bytes() const = 0;
  // Host ints -> a new i32 tensor [n] on this device (the host-span forms and per-step plans).
  absl::StatusOr<Tensor> UploadIndices(absl::Span<const int32_t> values);
  // The device form of a PagedBatchHost (contents not validated: see PagedBatch).
  absl::StatusOr<PagedBatch> UploadPagedBatch(const PagedBatchHost& host);
  // A paged KV cache of `dtype` (f32 or bf16) on this device, zero-filled.
  absl::StatusOr<PagedKvCache> AllocateKvCache(const KvCacheShape& shape, DType dtype);

  // ---- dense math ([rows, cols] contiguous unless said otherwise)
  // y[m, n] = sum_k x[m, k] * weight[n, k] + bias[n] (+ y[m, n] when `accumulate`); weight is
  // [out, in] as in HF Linear, a float matrix or quantized (kernels/linear_weight.h; a backend
  // without a kernel for the format says UNIMPLEMENTED). `bias` may be null.
  absl::Status Linear(const Tensor& x, const LinearWeight& weight, const Tensor* bias, Tensor* y,
                      bool accumulate = false);
  // y = x * rsqrt(mean(x^2) + eps) * weight, per row.
  absl::Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y);
  // y = (x - mean) * rsqrt(var + eps) * weight + bias, per row (biased variance).
  absl::Status LayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                         Tensor* y);
  // x = 0.5 x (1 + erf(x / sqrt 2)), in place.
  absl::Status GeluInPlace(Tensor* x);
  // x [rows, 2n] split in halves a | b -> y [rows, n] = silu(a) * b.
  absl::Status SiluAndMul(const Tensor& x, Tensor* y);
  // acc += x (same shape).
  absl::Status AddInPlace(const Tensor& x, Tensor* acc);
  // x *= scale.
  absl::Status ScaleInPlace(float scale, Tensor* x);

  // ---- data movement
  // Splits the columns of x [rows, sum(cols of parts)] into consecutive parts [rows, c_i].
  absl::Status SplitColumns(const Tensor& x, absl::Span<Tensor* const> parts);
  // out[i] = table[rows[i]] (embedding gather; rows must be in range). The table may be stored
  // in another float dtype than out.
  absl::Status GatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out);
  // Same with the row ids in an i32 device tensor [n] (trusted to be in range).
  absl::Status GatherRows(const Tensor& table, const Tensor& rows, Tensor* out);
  // dst[dst_row + i] = src[src_row + i] for i < num_rows (tensors viewed as [rows, cols]);
  // src may be of another float dtype than dst (converted).
  absl::Status CopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                        int64_t dst_row);
  // Convolution with kernel == stride as a GEMM: gathers non-overlapping kernel x kernel
  // patches of `image` into cols [batch * (h/k) * (w/k), channels * k * k]; patch rows are
  // ordered (batch, patch_y, patch_x) and columns (channel, ky, kx) to match a PyTorch conv
  // weight [out, channels, k, k] flattened to [out, channels * k * k].
  // Channels-first input is [b, c, h, w]; channels-last is [b, h, w, c].
  absl::Status PatchIm2Col(const Tensor& image, ImageLayout layout, int kernel, Tensor* cols);

  // ---- attention
  // GLM "original" RoPE on x [rows, num_heads * head_dim], in place: in every head the first
  // rotary_dim dims rotate as interleaved pairs (x[2j], x[2j+1]) by angle
  // positions[row] * base^(-2j / rotary_dim); the remaining dims pass through.
  absl::Status ApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                         int rotary_dim, double base);
  // Same with positions in an i32 device tensor [rows].
  absl::Status ApplyRope(Tensor* x, const Tensor& positions, int head_dim, int rotary_dim,
                         double base);
  // Softmax attention over `batch` independent sequences of equal length stacked in rows:
  // q [batch*len, num_heads*d], k/v [batch*len, num_kv_heads*d] -> out [batch*len, num_heads*d].
  // Query head h uses KV head h / (num_heads / num_kv_heads). `causal` masks future keys.
  absl::Status Attention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                         int num_heads, int num_kv_heads, bool causal, float scale, Tensor* out);
  // Writes k/v rows [n, kv_heads*head_dim] of `layer` into cache slots (slot = block *
  // block_size + offset in block), converting to the cache's dtype.
  absl::Status WriteKvCache(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                            int layer, PagedKvCache* cache);
  // Same with slots in an i32 device tensor [n]; a negative slot skips its row (the padding
  // rows of a CUDA-graph batch bucket).
  absl::Status WriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots, int layer,
                            PagedKvCache* cache);
  // Causal attention of each sequence's query rows over its paged KV (cached + new tokens,
  // already written): q/out [rows, num_heads * head_dim]; GQA as in Attention.
  // With `lse` (f32 [rows, num_heads]) also each row's log-sum-exp of its scaled scores (-inf
  // where the row sees no key, its output then 0): what merging partial results needs.
  absl::Status PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                              absl::Span<const PagedSequence> sequences, int num_heads,
                              float scale, Tensor* out, Tensor* lse = nullptr,
                              ContextShare share = {});
  // Same over a PagedBatch on the device (batch.share: the cache holds that share of tokens;
  // each query row attends to the shared keys at or before its own global position).
  absl::Status PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                              const PagedBatch& batch, int num_heads, float scale, Tensor* out,
                              Tensor* lse = nullptr);

  // ---- sampling helpers
  // Index of the largest value of each row of x [rows, cols] (first one on ties).
  absl::Status Argmax(const Tensor& x, std::vector<int32_t>* out);
  // Whether SampleRows is implemented here (CUDA): then a step's logits never leave the device.
  virtual bool samples_on_device() const { return false; }
  // Samples each row of `logits` (f32 [rows, vocab] on this backend; used as scratch: the
  // repetition penalty and suppression are applied in place) with batch.rows[row]; only the
  // ids and the logprobs asked for come back. UNIMPLEMENTED where !samples_on_device().
  absl::StatusOr<SampledRows> SampleRows(Tensor* logits, const SamplingBatchHost& batch);

  // ---- execution
  // Makes this backend usable from the calling thread (CUDA: its device becomes the thread's
  // current device). Callers that run steps on a thread other than the one that created the
  // backend call it there first.
  virtual absl::Status BindCallingThread() { return absl::OkStatus(); }
  // Waits for queued work and returns the first asynchronous error since the last call.
  virtual absl::Status Synchronize() { return absl::OkStatus(); }
  // Whether RunCaptured records and replays (CUDA graphs); false: it just calls `step`.
  virtual bool captures_steps() const { return false; }
  // Runs `step`, a forward pass whose every input and output lives at a fixed address
  // (weights, the KV cache, index tensors filled with WriteIndices, output tensors allocated
  // beforehand). A capturing backend runs the first call for `key` eagerly (warming up plans
  // and measuring its scratch memory), records the second into a graph whose Empty() calls are
  // served from memory reserved for `key`, and from then on replays the graph WITHOUT calling
  // `step`: the same `key` must always mean the same shapes and buffers. `step` must not
  // synchronize or copy from the host.
  virtual absl::Status RunCaptured(int64_t key, absl::FunctionRef<absl::Status()> step) {
    return step();
  }
  // Forgets every captured step (their buffers were reallocated).
  virtual void ClearCaptured() {}

 protected:
  virtual absl::StatusOr<Tensor> DoUpload(const Tensor& host, DType storage) = 0;
  virtual absl::Status DoZeroFill(Tensor* t) = 0;
  virtual absl::Status DoWriteIndices(absl::Span<const int32_t> values, Tensor* dst,
                                      int64_t offset) = 0;
  virtual absl::Status DoLinear(const Tensor& x, const LinearWeight& weight, const Tensor* bias,
                                Tensor* y, bool accumulate) = 0;
  virtual absl::Status DoRmsNorm(const Tensor& x, const Tensor& weight, float eps,
                                 Tensor* y) = 0;
  virtual absl::Status DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   float eps, Tensor* y) = 0;
  virtual absl::Status DoGeluInPlace(Tensor* x) = 0;
  virtual absl::Status DoSiluAndMul(const Tensor& x, Tensor* y) = 0;
  virtual absl::Status DoAddInPlace(const Tensor& x, Tensor* acc) = 0;
  virtual absl::Status DoScaleInPlace(float scale, Tensor* x) = 0;
  virtual absl::Status DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) = 0;
  // rows: i32 [n] on this device.
  virtual absl::Status DoGatherRows(const Tensor& table, const Tensor& rows, Tensor* out) = 0;
  virtual absl::Status DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows,
                                  Tensor* dst, int64_t dst_row) = 0;
  virtual absl::Status DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                                     Tensor* cols) = 0;
  virtual absl::Status DoApplyRope(Tensor* x, const Tensor& positions, int head_dim,
                                   int rotary_dim, double base) = 0;
  virtual absl::Status DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                                   int num_heads, int num_kv_heads, bool causal, float scale,
                                   Tensor* out) = 0;
  virtual absl::Status DoWriteKvCache(const Tensor& k, const Tensor& v, const Tensor& slots,
                                      int layer, PagedKvCache* cache) = 0;
  virtual absl::Status DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                        const PagedBatch& batch, int num_heads, float scale,
                                        Tensor* out, Tensor* lse) = 0;
  virtual absl::Status DoArgmax(const Tensor& x, std::vector<int32_t>* out) = 0;
  virtual absl::StatusOr<SampledRows> DoSampleRows(Tensor* logits,
                                                   const SamplingBatchHost& batch);
};

}  // namespace glm4v
