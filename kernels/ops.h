// The op interface every compute backend implements (CPU reference now, CUDA later).
//
// Model code (vision tower, decoder) is written once against `Backend` and never touches raw
// memory: activations and weights are Tensors living on the backend's device (allocated with
// Empty(), weights moved there with Upload()). Small per-step metadata (positions, KV slots,
// block tables) is passed as host spans; a device backend copies it over.
//
// Public methods are non-virtual: they validate dtypes/shapes once for all backends and then
// call the backend's `Do*` implementation, which may assume valid arguments.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tensor.h"
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

  // ---- memory
  // Uninitialized f32/i32 tensor on this backend's device.
  virtual Tensor Empty(DType dtype, Shape shape) = 0;
  // A copy (or, on the CPU, a view) of a host tensor on this device, as f32.
  virtual absl::StatusOr<Tensor> Upload(const Tensor& host) = 0;
  // A host f32 copy of a device tensor.
  virtual absl::StatusOr<Tensor> Download(const Tensor& device_tensor) = 0;

  // ---- dense math (all f32 [rows, cols] contiguous unless said otherwise)
  // y[m, n] = sum_k x[m, k] * weight[n, k] + bias[n]; weight is [out, in] as in HF Linear.
  // `bias` may be null.
  absl::Status Linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor* y);
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
  // out[i] = table[rows[i]] (embedding gather; rows must be in range).
  absl::Status GatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out);
  // dst[dst_row + i] = src[src_row + i] for i < num_rows (tensors viewed as [rows, cols]).
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
  // Softmax attention over `batch` independent sequences of equal length stacked in rows:
  // q [batch*len, num_heads*d], k/v [batch*len, num_kv_heads*d] -> out [batch*len, num_heads*d].
  // Query head h uses KV head h / (num_heads / num_kv_heads). `causal` masks future keys.
  absl::Status Attention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                         int num_heads, int num_kv_heads, bool causal, float scale, Tensor* out);
  // Writes k/v rows [n, kv_heads*head_dim] of `layer` into cache slots (slot = block *
  // block_size + offset in block).
  absl::Status WriteKvCache(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                            int layer, PagedKvCache* cache);
  // Causal attention of each sequence's query rows over its paged KV (cached + new tokens,
  // already written): q/out [rows, num_heads * head_dim]; GQA as in Attention.
  absl::Status PagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                              absl::Span<const PagedSequence> sequences, int num_heads,
                              float scale, Tensor* out);

  // ---- sampling helpers
  // Index of the largest value of each row of x [rows, cols] (first one on ties).
  absl::Status Argmax(const Tensor& x, std::vector<int32_t>* out);

 protected:
  virtual void DoLinear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor* y) = 0;
  virtual void DoRmsNorm(const Tensor& x, const Tensor& weight, float eps, Tensor* y) = 0;
  virtual void DoLayerNorm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                           Tensor* y) = 0;
  virtual void DoGeluInPlace(Tensor* x) = 0;
  virtual void DoSiluAndMul(const Tensor& x, Tensor* y) = 0;
  virtual void DoAddInPlace(const Tensor& x, Tensor* acc) = 0;
  virtual void DoScaleInPlace(float scale, Tensor* x) = 0;
  virtual void DoSplitColumns(const Tensor& x, absl::Span<Tensor* const> parts) = 0;
  virtual void DoGatherRows(const Tensor& table, absl::Span<const int32_t> rows, Tensor* out) = 0;
  virtual void DoCopyRows(const Tensor& src, int64_t src_row, int64_t num_rows, Tensor* dst,
                          int64_t dst_row) = 0;
  virtual void DoPatchIm2Col(const Tensor& image, ImageLayout layout, int kernel,
                             Tensor* cols) = 0;
  virtual void DoApplyRope(Tensor* x, absl::Span<const int32_t> positions, int head_dim,
                           int rotary_dim, double base) = 0;
  virtual void DoAttention(const Tensor& q, const Tensor& k, const Tensor& v, int batch,
                           int num_heads, int num_kv_heads, bool causal, float scale,
                           Tensor* out) = 0;
  virtual void DoWriteKvCache(const Tensor& k, const Tensor& v, absl::Span<const int32_t> slots,
                              int layer, PagedKvCache* cache) = 0;
  virtual void DoPagedAttention(const Tensor& q, const PagedKvCache& cache, int layer,
                                absl::Span<const PagedSequence> sequences, int num_heads,
                                float scale, Tensor* out) = 0;
  virtual void DoArgmax(const Tensor& x, std::vector<int32_t>* out) = 0;
};

}  // namespace glm4v
