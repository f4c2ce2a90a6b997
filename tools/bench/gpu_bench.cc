// GPU benchmark of the CUDA kernels at GLM-4V-9B's real shapes with random bf16 weights.
//
// Builds the decoder layer stack and the vision tower directly from kernels/cuda (the model code
// does not run on a device backend yet) and reports decode ms/token (CUDA graph per batch),
// prefill, vision ms per 1120x1120 image, achieved HBM bandwidth / TFLOP/s and GPU memory.
// Exits with status 2 and a message when there is no CUDA device.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"

ABSL_FLAG(std::vector<std::string>, decode_batches,
          std::vector<std::string>({"1", "8", "32", "64"}), "decode batch sizes");
ABSL_FLAG(int, context, 1024, "KV context length for decode");
ABSL_FLAG(std::vector<std::string>, prefill_lengths,
          std::vector<std::string>({"1024", "4096"}), "prefill lengths");
ABSL_FLAG(std::vector<std::string>, vision_batches, std::vector<std::string>({"1", "4"}),
          "images per vision batch");
ABSL_FLAG(int, iters, 10, "timed iterations per measurement");
ABSL_FLAG(bool, vision, true, "benchmark the vision tower");

namespace glm4v::cuda {
namespace {

using bf16 = __nv_bfloat16;

// GLM-4V-9B (config.json of THUDM/glm-4v-9b); random weights of these shapes.
struct DecoderShape {
  int hidden = 4096, layers = 40, heads = 32, kv_heads = 2, head_dim = 128, ffn = 13696;
  int vocab = 151552, block_size = 16;
  float eps = 1.5625e-7f;
  int qkv() const { return (heads + 2 * kv_heads) * head_dim; }
};
struct VisionShape {
  int hidden = 1792, layers = 63, heads = 16, mlp = 15360, patch = 14, image = 1120;
  int out_hidden = 4096, ffn = 13696;
  int grid() const { return image / patch; }  // 80
  int tokens() const { return grid() * grid() + 1; }  // 6401
};

class Bench {
 public:
  absl::Status Init() {
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, 0));
    return gemm_.Init();
  }
  ~Bench() {
    for (void* p : allocs_) cudaFree(p);
  }

  template <typename T>
  absl::StatusOr<T*> Alloc(int64_t n) {
    void* p = nullptr;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&p, std::max<int64_t>(n, 1) * sizeof(T)));
    allocs_.push_back(p);
    return static_cast<T*>(p);
  }
  // Weights uniform in +-1/sqrt(fan_in) so activations stay O(1) through 40 layers.
  absl::StatusOr<bf16*> Weight(int64_t rows, int64_t cols) {
    ASSIGN_OR_RETURN(bf16 * p, Alloc<bf16>(rows * cols));
    CUDA_RETURN_IF_ERROR(FillUniform<bf16>(p, rows * cols, seed_++, 1.f / std::sqrt(float(cols)), s_));
    weight_bytes_ += rows * cols * 2;
    return p;
  }
  absl::StatusOr<bf16*> Ones(int64_t n) {
    ASSIGN_OR_RETURN(bf16 * p, Alloc<bf16>(n));
    CUDA_RETURN_IF_ERROR(FillUniform<bf16>(p, n, seed_++, 0.f, s_));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s_));
    std::vector<uint16_t> one(n, 0x3f80);  // bf16 1.0
    CUDA_RETURN_IF_ERROR(cudaMemcpy(p, one.data(), n * 2, cudaMemcpyHostToDevice));
    weight_bytes_ += n * 2;
    return p;
  }
  absl::Status Gemm(const bf16* x, const bf16* w, const bf16* bias, bf16* y, int64_t m,
                    int64_t n, int64_t k, float beta = 0.f) {
    GemmArgs a;
    a.m = m;
    a.n = n;
    a.k = k;
    a.x = x;
    a.w = w;
    a.bias = bias;
    a.y = y;
    a.beta = beta;
    return gemm_.Run(a, s_);
  }
  // Mean milliseconds of fn over iters (after one warm-up).
  template <typename F>
  absl::StatusOr<double> Time(int iters, F fn) {
    RETURN_IF_ERROR(fn());
    cudaEvent_t a, b;
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&a));
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&b));
    CUDA_RETURN_IF_ERROR(cudaEventRecord(a, s_));
    for (int i = 0; i < iters; ++i) RETURN_IF_ERROR(fn());
    CUDA_RETURN_IF_ERROR(cudaEventRecord(b, s_));
    CUDA_RETURN_IF_ERROR(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms / iters;
  }

  cudaStream_t s_ = nullptr;
  int sms_ = 0;
  GemmRunner gemm_;
  uint64_t seed_ = 1;
  int64_t weight_bytes_ = 0;
  std::vector<void*> allocs_;
};

struct DecoderLayer {
  bf16 *ln1, *qkv_w, *qkv_b, *dense, *ln2, *up, *down;
};
struct Decoder {
  DecoderShape sh;
  bf16 *embed, *final_ln, *lm_head;
  std::vector<DecoderLayer> layers;
  std::vector<bf16*> k_cache, v_cache;  // per layer [blocks, block_size, kv_heads, head_dim]
  int num_blocks = 0;
};

absl::Status BuildDecoder(Bench& b, Decoder& d, int cache_tokens) {
  const DecoderShape& s = d.sh;
  ASSIGN_OR_RETURN(d.embed, b.Weight(s.vocab, s.hidden));
  ASSIGN_OR_RETURN(d.final_ln, b.Ones(s.hidden));
  ASSIGN_OR_RETURN(d.lm_head, b.Weight(s.vocab, s.hidden));
  d.num_blocks = (cache_tokens + s.block_size - 1) / s.block_size;
  const int64_t cache_elems = int64_t{d.num_blocks} * s.block_size * s.kv_heads * s.head_dim;
  for (int l = 0; l < s.layers; ++l) {
    DecoderLayer L;
    ASSIGN_OR_RETURN(L.ln1, b.Ones(s.hidden));
    ASSIGN_OR_RETURN(L.qkv_w, b.Weight(s.qkv(), s.hidden));
    ASSIGN_OR_RETURN(L.qkv_b, b.Weight(1, s.qkv()));
    ASSIGN_OR_RETURN(L.dense, b.Weight(s.hidden, s.hidden));
    ASSIGN_OR_RETURN(L.ln2, b.Ones(s.hidden));
    ASSIGN_OR_RETURN(L.up, b.Weight(2 * s.ffn, s.hidden));
    ASSIGN_OR_RETURN(L.down, b.Weight(s.hidden, s.ffn));
    d.layers.push_back(L);
    ASSIGN_OR_RETURN(bf16 * k, b.Alloc<bf16>(cache_elems));
    ASSIGN_OR_RETURN(bf16 * v, b.Alloc<bf16>(cache_elems));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(k, 0, cache_elems * 2, b.s_));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(v, 0, cache_elems * 2, b.s_));
    d.k_cache.push_back(k);
    d.v_cache.push_back(v);
  }
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(b.s_));
  return absl::OkStatus();
}

// Fixed device buffers for one step of `rows` tokens over `seqs` sequences.
struct Step {
  int rows = 0, num_seqs = 0, max_q = 0, max_kv = 0, splits = 1;
  int32_t *ids, *positions, *slots, *tables, *next;
  AttnSequence* seqs;
  bf16 *x, *h, *qkv, *attn, *gate_up, *act, *logits;
  float* workspace;
};

// rows = sum of num_q; every sequence has num_q new tokens after `cached` ones.
absl::Status MakeStep(Bench& b, const Decoder& d, int num_seqs, int num_q, int cached, Step& st) {
  const DecoderShape& s = d.sh;
  st.rows = num_seqs * num_q;
  st.num_seqs = num_seqs;
  st.max_q = num_q;
  st.max_kv = cached + num_q;
  const int blocks_per_seq = (st.max_kv + s.block_size - 1) / s.block_size;
  if (blocks_per_seq * num_seqs > d.num_blocks) return absl::ResourceExhaustedError("KV cache");
  std::vector<int32_t> ids(st.rows), pos(st.rows), slots(st.rows), tables;
  std::vector<AttnSequence> seqs;
  for (int q = 0; q < num_seqs; ++q) {
    seqs.push_back(AttnSequence{q * num_q, num_q, st.max_kv, q * blocks_per_seq});
    for (int i = 0; i < blocks_per_seq; ++i) tables.push_back(q * blocks_per_seq + i);
    for (int i = 0; i < num_q; ++i) {
      const int t = cached + i, r = q * num_q + i;
      ids[r] = (r * 7919 + 11) % s.vocab;
      pos[r] = t;
      slots[r] = tables[q * blocks_per_seq + t / s.block_size] * s.block_size + t % s.block_size;
    }
  }
  ASSIGN_OR_RETURN(st.ids, b.Alloc<int32_t>(st.rows));
  ASSIGN_OR_RETURN(st.positions, b.Alloc<int32_t>(st.rows));
  ASSIGN_OR_RETURN(st.slots, b.Alloc<int32_t>(st.rows));
  ASSIGN_OR_RETURN(st.tables, b.Alloc<int32_t>(tables.size()));
  ASSIGN_OR_RETURN(st.next, b.Alloc<int32_t>(st.rows));
  ASSIGN_OR_RETURN(void* sq, b.Alloc<char>(seqs.size() * sizeof(AttnSequence)));
  st.seqs = static_cast<AttnSequence*>(sq);
  CUDA_RETURN_IF_ERROR(cudaMemcpy(st.ids, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(st.positions, pos.data(), pos.size() * 4, cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(st.slots, slots.data(), slots.size() * 4, cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(st.tables, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(st.seqs, seqs.data(), seqs.size() * sizeof(AttnSequence),
                                  cudaMemcpyHostToDevice));
  const int64_t r = st.rows;
  ASSIGN_OR_RETURN(st.x, b.Alloc<bf16>(r * s.hidden));
  ASSIGN_OR_RETURN(st.h, b.Alloc<bf16>(r * s.hidden));
  ASSIGN_OR_RETURN(st.qkv, b.Alloc<bf16>(r * s.qkv()));
  ASSIGN_OR_RETURN(st.attn, b.Alloc<bf16>(r * s.hidden));
  ASSIGN_OR_RETURN(st.gate_up, b.Alloc<bf16>(r * 2 * s.ffn));
  ASSIGN_OR_RETURN(st.act, b.Alloc<bf16>(r * s.ffn));
  ASSIGN_OR_RETURN(st.logits, b.Alloc<bf16>(int64_t{num_seqs} * s.vocab));
  AttnParams p;
  p.num_heads = s.heads;
  p.num_kv_heads = s.kv_heads;
  p.max_num_q = st.max_q;
  p.max_kv_len = st.max_kv;
  p.num_seqs = num_seqs;
  st.splits = SuggestAttentionSplits(p, b.sms_);
  ASSIGN_OR_RETURN(st.workspace, b.Alloc<float>(std::max<size_t>(
                                     1, AttentionWorkspaceBytes(st.splits, st.rows, s.heads,
                                                                s.head_dim) / 4)));
  return absl::OkStatus();
}

// One forward step: embeddings -> 40 layers -> final norm of each sequence's last row ->
// logits -> greedy ids.
absl::Status DecoderForward(Bench& b, const Decoder& d, const Step& st) {
  const DecoderShape& s = d.sh;
  const int64_t r = st.rows;
  CUDA_RETURN_IF_ERROR(GatherRows<bf16>(d.embed, s.vocab, s.hidden, st.ids, r, st.x, b.s_));
  RopeParams rope{s.heads, s.head_dim, s.head_dim / 2, 10000.0};
  for (int l = 0; l < s.layers; ++l) {
    const DecoderLayer& L = d.layers[l];
    CUDA_RETURN_IF_ERROR(RmsNorm<bf16>(st.x, nullptr, L.ln1, s.eps, r, s.hidden, st.h, b.s_));
    RETURN_IF_ERROR(b.Gemm(st.h, L.qkv_w, L.qkv_b, st.qkv, r, s.qkv(), s.hidden));
    CUDA_RETURN_IF_ERROR(RopeAndWriteKv<bf16>(st.qkv, r, st.positions, st.slots, rope, s.kv_heads,
                                              d.k_cache[l], d.v_cache[l], b.s_));
    AttnParams p;
    p.q = st.qkv;
    p.q_stride = s.qkv();
    p.k = d.k_cache[l];
    p.v = d.v_cache[l];
    p.kv_stride = s.kv_heads * s.head_dim;
    p.block_tables = st.tables;
    p.block_size = s.block_size;
    p.out = st.attn;
    p.out_stride = s.hidden;
    p.seqs = st.seqs;
    p.num_seqs = st.num_seqs;
    p.max_num_q = st.max_q;
    p.max_kv_len = st.max_kv;
    p.total_q_rows = st.rows;
    p.num_heads = s.heads;
    p.num_kv_heads = s.kv_heads;
    p.head_dim = s.head_dim;
    p.causal = true;
    p.scale = 1.f / std::sqrt(float(s.head_dim));
    p.num_splits = st.splits;
    p.workspace = st.workspace;
    CUDA_RETURN_IF_ERROR(FlashAttention(p, b.s_));
    RETURN_IF_ERROR(b.Gemm(st.attn, L.dense, nullptr, st.x, r, s.hidden, s.hidden, 1.f));
    CUDA_RETURN_IF_ERROR(RmsNorm<bf16>(st.x, nullptr, L.ln2, s.eps, r, s.hidden, st.h, b.s_));
    RETURN_IF_ERROR(b.Gemm(st.h, L.up, nullptr, st.gate_up, r, 2 * s.ffn, s.hidden));
    CUDA_RETURN_IF_ERROR(SiluAndMul<bf16>(st.gate_up, st.act, r, s.ffn, b.s_));
    RETURN_IF_ERROR(b.Gemm(st.act, L.down, nullptr, st.x, r, s.hidden, s.ffn, 1.f));
  }
  // Logits only for each sequence's last row (rows are grouped per sequence, max_q each).
  const int64_t last = st.max_q - 1;
  CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(st.h, s.hidden * 2, st.x + last * s.hidden,
                                         int64_t{st.max_q} * s.hidden * 2, s.hidden * 2,
                                         st.num_seqs, cudaMemcpyDeviceToDevice, b.s_));
  CUDA_RETURN_IF_ERROR(RmsNorm<bf16>(st.h, nullptr, d.final_ln, s.eps, st.num_seqs, s.hidden,
                                     st.h, b.s_));
  RETURN_IF_ERROR(b.Gemm(st.h, d.lm_head, nullptr, st.logits, st.num_seqs, s.vocab, s.hidden));
  CUDA_RETURN_IF_ERROR(ArgmaxRows<bf16>(st.logits, st.num_seqs, s.vocab, st.next, b.s_));
  return absl::OkStatus();
}

struct VisionLayer {
  bf16 *qkv_w, *qkv_b, *dense_w, *dense_b, *ln1_w, *ln1_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};
struct Vision {
  VisionShape sh;
  bf16 *patch_w, *patch_b, *cls, *pos, *conv_w, *conv_b, *proj, *norm_w, *norm_b, *gate_up, *down;
  std::vector<VisionLayer> layers;
};

absl::Status BuildVision(Bench& b, Vision& v) {
  const VisionShape& s = v.sh;
  const int64_t pk = 3 * s.patch * s.patch;
  ASSIGN_OR_RETURN(v.patch_w, b.Weight(s.hidden, pk));
  ASSIGN_OR_RETURN(v.patch_b, b.Weight(1, s.hidden));
  ASSIGN_OR_RETURN(v.cls, b.Weight(1, s.hidden));
  ASSIGN_OR_RETURN(v.pos, b.Weight(s.tokens(), s.hidden));
  for (int l = 0; l < s.layers; ++l) {
    VisionLayer L;
    ASSIGN_OR_RETURN(L.qkv_w, b.Weight(3 * s.hidden, s.hidden));
    ASSIGN_OR_RETURN(L.qkv_b, b.Weight(1, 3 * s.hidden));
    ASSIGN_OR_RETURN(L.dense_w, b.Weight(s.hidden, s.hidden));
    ASSIGN_OR_RETURN(L.dense_b, b.Weight(1, s.hidden));
    ASSIGN_OR_RETURN(L.ln1_w, b.Ones(s.hidden));
    ASSIGN_OR_RETURN(L.ln1_b, b.Weight(1, s.hidden));
    ASSIGN_OR_RETURN(L.fc1_w, b.Weight(s.mlp, s.hidden));
    ASSIGN_OR_RETURN(L.fc1_b, b.Weight(1, s.mlp));
    ASSIGN_OR_RETURN(L.fc2_w, b.Weight(s.hidden, s.mlp));
    ASSIGN_OR_RETURN(L.fc2_b, b.Weight(1, s.hidden));
    v.layers.push_back(L);
  }
  ASSIGN_OR_RETURN(v.conv_w, b.Weight(s.out_hidden, 4 * s.hidden));
  ASSIGN_OR_RETURN(v.conv_b, b.Weight(1, s.out_hidden));
  ASSIGN_OR_RETURN(v.proj, b.Weight(s.out_hidden, s.out_hidden));
  ASSIGN_OR_RETURN(v.norm_w, b.Ones(s.out_hidden));
  ASSIGN_OR_RETURN(v.norm_b, b.Weight(1, s.out_hidden));
  ASSIGN_OR_RETURN(v.gate_up, b.Weight(2 * s.ffn, s.out_hidden));  // [gate_proj | dense_h_to_4h]
  ASSIGN_OR_RETURN(v.down, b.Weight(s.out_hidden, s.ffn));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(b.s_));
  return absl::OkStatus();
}

struct VisionBuffers {
  int images = 0;
  bf16 *pixels, *cols, *x, *qkv, *attn, *tmp, *mlp, *grid_cols, *y, *y2, *gu, *act, *out;
  AttnSequence* seqs;
};

absl::Status MakeVisionBuffers(Bench& b, const Vision& v, int images, VisionBuffers& vb) {
  const VisionShape& s = v.sh;
  const int64_t t = int64_t{images} * s.tokens(), p = int64_t{images} * 1600;
  vb.images = images;
  ASSIGN_OR_RETURN(vb.pixels, b.Alloc<bf16>(int64_t{images} * 3 * s.image * s.image));
  CUDA_RETURN_IF_ERROR(FillUniform<bf16>(vb.pixels, int64_t{images} * 3 * s.image * s.image, 99, 2.f, b.s_));
  ASSIGN_OR_RETURN(vb.cols, b.Alloc<bf16>(int64_t{images} * 6400 * 3 * s.patch * s.patch));
  ASSIGN_OR_RETURN(vb.x, b.Alloc<bf16>(t * s.hidden));
  ASSIGN_OR_RETURN(vb.qkv, b.Alloc<bf16>(t * 3 * s.hidden));
  ASSIGN_OR_RETURN(vb.attn, b.Alloc<bf16>(t * s.hidden));
  ASSIGN_OR_RETURN(vb.tmp, b.Alloc<bf16>(t * s.hidden));
  ASSIGN_OR_RETURN(vb.mlp, b.Alloc<bf16>(t * s.mlp));
  ASSIGN_OR_RETURN(vb.grid_cols, b.Alloc<bf16>(p * 4 * s.hidden));
  ASSIGN_OR_RETURN(vb.y, b.Alloc<bf16>(p * s.out_hidden));
  ASSIGN_OR_RETURN(vb.y2, b.Alloc<bf16>(p * s.out_hidden));
  ASSIGN_OR_RETURN(vb.gu, b.Alloc<bf16>(p * 2 * s.ffn));
  ASSIGN_OR_RETURN(vb.act, b.Alloc<bf16>(p * s.ffn));
  ASSIGN_OR_RETURN(vb.out, b.Alloc<bf16>(p * s.out_hidden));
  std::vector<AttnSequence> seqs;
  for (int i = 0; i < images; ++i) {
    seqs.push_back(AttnSequence{i * s.tokens(), s.tokens(), s.tokens(), i * s.tokens()});
  }
  ASSIGN_OR_RETURN(void* sq, b.Alloc<char>(seqs.size() * sizeof(AttnSequence)));
  vb.seqs = static_cast<AttnSequence*>(sq);
  CUDA_RETURN_IF_ERROR(cudaMemcpy(vb.seqs, seqs.data(), seqs.size() * sizeof(AttnSequence),
                                  cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status VisionForward(Bench& b, const Vision& v, const VisionBuffers& vb) {
  const VisionShape& s = v.sh;
  const int n = vb.images;
  const int64_t T = int64_t{n} * s.tokens(), H = s.hidden, pk = 3 * s.patch * s.patch;
  // Patch embedding (conv 14x14 stride 14 as a GEMM) written after each image's CLS row.
  CUDA_RETURN_IF_ERROR(PatchIm2Col<bf16>(vb.pixels, false, n, 3, s.image, s.image, s.patch,
                                         vb.cols, b.s_));
  for (int i = 0; i < n; ++i) {
    bf16* img = vb.x + int64_t{i} * s.tokens() * H;
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(img, v.cls, H * 2, cudaMemcpyDeviceToDevice, b.s_));
    RETURN_IF_ERROR(b.Gemm(vb.cols + int64_t{i} * 6400 * pk, v.patch_w, v.patch_b, img + H, 6400,
                           H, pk));
  }
  CUDA_RETURN_IF_ERROR(AddPeriodicRows<bf16>(v.pos, s.tokens(), vb.x, T, H, b.s_));
  for (const VisionLayer& L : v.layers) {
    RETURN_IF_ERROR(b.Gemm(vb.x, L.qkv_w, L.qkv_b, vb.qkv, T, 3 * H, H));
    AttnParams p;
    p.q = vb.qkv;
    p.k = vb.qkv + H;
    p.v = vb.qkv + 2 * H;
    p.q_stride = p.kv_stride = 3 * H;
    p.out = vb.attn;
    p.out_stride = H;
    p.seqs = vb.seqs;
    p.num_seqs = n;
    p.max_num_q = p.max_kv_len = s.tokens();
    p.total_q_rows = static_cast<int>(T);
    p.num_heads = p.num_kv_heads = s.heads;
    p.head_dim = s.hidden / s.heads;
    p.causal = false;
    p.scale = 1.f / std::sqrt(float(p.head_dim));
    CUDA_RETURN_IF_ERROR(FlashAttention(p, b.s_));
    RETURN_IF_ERROR(b.Gemm(vb.attn, L.dense_w, L.dense_b, vb.tmp, T, H, H));
    CUDA_RETURN_IF_ERROR(LayerNorm<bf16>(vb.tmp, L.ln1_w, L.ln1_b, 1e-6f, T, H, nullptr, vb.x, b.s_));
    RETURN_IF_ERROR(b.Gemm(vb.x, L.fc1_w, L.fc1_b, vb.mlp, T, s.mlp, H));
    CUDA_RETURN_IF_ERROR(Gelu<bf16>(vb.mlp, vb.mlp, T * s.mlp, b.s_));
    RETURN_IF_ERROR(b.Gemm(vb.mlp, L.fc2_w, L.fc2_b, vb.tmp, T, H, s.mlp));
    CUDA_RETURN_IF_ERROR(LayerNorm<bf16>(vb.tmp, L.ln1_w, L.ln1_b, 1e-6f, T, H, nullptr, vb.x, b.s_));
  }
  // Drop CLS; 2x2 stride-2 conv over the 80x80 token grid (channels-last) as a GEMM.
  for (int i = 0; i < n; ++i) {
    CUDA_RETURN_IF_ERROR(PatchIm2Col<bf16>(vb.x + (int64_t{i} * s.tokens() + 1) * H, true, 1, H,
                                           s.grid(), s.grid(), 2,
                                           vb.grid_cols + int64_t{i} * 1600 * 4 * H, b.s_));
  }
  const int64_t P = int64_t{n} * 1600, O = s.out_hidden;
  RETURN_IF_ERROR(b.Gemm(vb.grid_cols, v.conv_w, v.conv_b, vb.y, P, O, 4 * H));
  // GLU projector.
  RETURN_IF_ERROR(b.Gemm(vb.y, v.proj, nullptr, vb.y2, P, O, O));
  CUDA_RETURN_IF_ERROR(LayerNorm<bf16>(vb.y2, v.norm_w, v.norm_b, 1e-5f, P, O, vb.y2, nullptr, b.s_));
  CUDA_RETURN_IF_ERROR(Gelu<bf16>(vb.y2, vb.y2, P * O, b.s_));
  RETURN_IF_ERROR(b.Gemm(vb.y2, v.gate_up, nullptr, vb.gu, P, 2 * s.ffn, O));
  CUDA_RETURN_IF_ERROR(SiluAndMul<bf16>(vb.gu, vb.act, P, s.ffn, b.s_));
  RETURN_IF_ERROR(b.Gemm(vb.act, v.down, nullptr, vb.out, P, O, s.ffn));
  CUDA_RETURN_IF_ERROR(Scale<bf16>(vb.out, P * O, 1.f / 8.f, b.s_));  // scaling_factor
  return absl::OkStatus();
}

size_t UsedGpuBytes() {
  size_t free_b = 0, total = 0;
  cudaMemGetInfo(&free_b, &total);
  return total - free_b;
}

absl::Status Run() {
  Bench b;
  RETURN_IF_ERROR(b.Init());
  cudaDeviceProp prop;
  CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / double(1 << 30));
  const int iters = absl::GetFlag(FLAGS_iters), ctx = absl::GetFlag(FLAGS_context);
  std::vector<int> batches, prefills, vbatches;
  for (const auto& x : absl::GetFlag(FLAGS_decode_batches)) batches.push_back(std::stoi(x));
  for (const auto& x : absl::GetFlag(FLAGS_prefill_lengths)) prefills.push_back(std::stoi(x));
  for (const auto& x : absl::GetFlag(FLAGS_vision_batches)) vbatches.push_back(std::stoi(x));

  Decoder d;
  int cache_tokens = 0;
  const int bs = d.sh.block_size;
  for (int B : batches) cache_tokens = std::max(cache_tokens, B * ((ctx + 1 + bs - 1) / bs) * bs);
  for (int L : prefills) cache_tokens = std::max(cache_tokens, (L + bs - 1) / bs * bs);
  RETURN_IF_ERROR(BuildDecoder(b, d, cache_tokens));
  const int64_t decoder_bytes = b.weight_bytes_;
  std::printf("decoder: %.2f GiB bf16 weights, KV cache %d tokens\n",
              decoder_bytes / double(1 << 30), cache_tokens);
  const DecoderShape& s = d.sh;
  const double params = decoder_bytes / 2.0;
  const double kv_bytes_per_token = 2.0 * s.layers * s.kv_heads * s.head_dim * 2;

  for (int B : batches) {
    Step st;
    RETURN_IF_ERROR(MakeStep(b, d, B, 1, ctx, st));
    CudaGraphCache graphs;
    auto record = [&](cudaStream_t) { return DecoderForward(b, d, st); };
    ASSIGN_OR_RETURN(double ms, b.Time(iters, [&] { return graphs.Run(B, b.s_, record); }));
    // Bytes that must cross HBM per step: all weights except the unused embedding rows, + KV.
    const double bytes = decoder_bytes - double(s.vocab) * s.hidden * 2 + B * (ctx + 1) * kv_bytes_per_token;
    std::printf("decode  batch %3d ctx %5d: %8.3f ms/step %9.1f tok/s  %6.2f TB/s  (splits %d)\n", B,
                ctx, ms, B * 1000.0 / ms, bytes / (ms * 1e-3) / 1e12, st.splits);
  }
  for (int L : prefills) {
    Step st;
    RETURN_IF_ERROR(MakeStep(b, d, 1, L, 0, st));
    ASSIGN_OR_RETURN(double ms, b.Time(std::max(1, iters / 2), [&] { return DecoderForward(b, d, st); }));
    const double flops = 2.0 * (params - double(s.vocab) * s.hidden * 2) * L +
                         2.0 * s.layers * s.heads * double(L) * L * s.head_dim * 2 / 2;
    std::printf("prefill %5d tokens: %8.2f ms  %6.1f TFLOP/s\n", L, ms, flops / (ms * 1e-3) / 1e12);
  }
  if (absl::GetFlag(FLAGS_vision)) {
    Vision v;
    const int64_t before = b.weight_bytes_;
    RETURN_IF_ERROR(BuildVision(b, v));
    const double vparams = (b.weight_bytes_ - before) / 2.0;
    std::printf("vision: %.2f GiB bf16 weights\n", (b.weight_bytes_ - before) / double(1 << 30));
    for (int n : vbatches) {
      VisionBuffers vb;
      RETURN_IF_ERROR(MakeVisionBuffers(b, v, n, vb));
      ASSIGN_OR_RETURN(double ms, b.Time(std::max(1, iters / 4), [&] { return VisionForward(b, v, vb); }));
      const double t = v.sh.tokens();
      const double flops = n * (2.0 * vparams * t + 4.0 * v.sh.layers * t * t * v.sh.hidden);
      std::printf("vision  %d image(s): %8.2f ms/image  %6.1f TFLOP/s (approx.)\n", n, ms / n,
                  flops / (ms * 1e-3) / 1e12);
    }
  }
  std::printf("GPU memory used: %.2f GiB (weights %.2f GiB)\n", UsedGpuBytes() / double(1 << 30),
              b.weight_bytes_ / double(1 << 30));
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v::cuda

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (glm4v::cuda::DeviceCount() == 0) {
    std::fprintf(stderr, "gpu_bench: %s; nothing to measure (needs an NVIDIA GPU).\n",
                 glm4v::cuda::NoDeviceReason().c_str());
    return 2;
  }
  absl::Status status = glm4v::cuda::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "gpu_bench failed: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
