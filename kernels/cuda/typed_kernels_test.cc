// The bf16 typed API (what the serving fast path calls) against the double-precision oracles:
// fused residual norms, fused RoPE + paged KV write, paged / split-K flash attention with GQA,
// the vision attention shape, cuBLASLt bf16 GEMMs with bias and accumulate, sampling, graphs.
// Inputs are rounded to bf16 before the reference sees them. Skips without a CUDA device.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "common/dtype.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_graph.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/sampling.h"
#include "kernels/testing/op_reference.h"

namespace glm4v::cuda {
namespace {

namespace ref = ::glm4v::reference;
using ref::Vec;
using bf16 = __nv_bfloat16;

// A device buffer of T (freed at scope exit).
template <typename T>
class Buf {
 public:
  explicit Buf(size_t n) : n_(n) { EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)), cudaSuccess); }
  ~Buf() { cudaFree(p_); }
  Buf(const Buf&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_;
};

// Rounds `v` to bf16 in place and returns a device copy.
std::unique_ptr<Buf<bf16>> UploadBF16(std::vector<float>& v) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = ::glm4v::F32ToBF16(v[i]);
    v[i] = ::glm4v::BF16ToF32(bits[i]);
  }
  auto buf = std::make_unique<Buf<bf16>>(v.size());
  EXPECT_EQ(cudaMemcpy(buf->get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice),
            cudaSuccess);
  return buf;
}
template <typename T>
std::unique_ptr<Buf<T>> Upload(const std::vector<T>& v) {
  auto buf = std::make_unique<Buf<T>>(v.size());
  EXPECT_EQ(cudaMemcpy(buf->get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
  return buf;
}
Vec Download(const Buf<bf16>& buf) {
  std::vector<uint16_t> bits(buf.size());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(bits.data(), buf.get(), bits.size() * 2, cudaMemcpyDeviceToHost),
            cudaSuccess);
  Vec out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = ::glm4v::BF16ToF32(bits[i]);
  return out;
}
template <typename T>
std::vector<T> DownloadRaw(const Buf<T>& buf) {
  std::vector<T> out(buf.size());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(out.data(), buf.get(), out.size() * sizeof(T), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return out;
}
Vec ToVec(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }
Vec Slice(const Vec& v, int64_t begin, int64_t end) { return Vec(v.begin() + begin, v.begin() + end); }

void ExpectClose(const Vec& got, const Vec& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(ref::MaxAbsDiff(got, want), rel * std::max(ref::MaxAbs(want), 1e-30));
}

class TypedKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (DeviceCount() == 0) GTEST_SKIP() << NoDeviceReason();
  }
};

TEST_F(TypedKernelsTest, RmsNormWithFusedResidual) {
  for (int64_t cols : {4096, 1000, 7}) {
    const int64_t rows = 3;
    auto x = ref::RandomFloats(rows * cols, 1, 2.f), res = ref::RandomFloats(rows * cols, 2, 2.f);
    auto w = ref::RandomFloats(cols, 3);
    auto dx = UploadBF16(x), dres = UploadBF16(res), dw = UploadBF16(w);
    Buf<bf16> y(rows * cols);
    ASSERT_EQ(RmsNorm<bf16>(dx->get(), dres->get(), dw->get(), 1.5625e-7f, rows, cols, y.get(),
                            nullptr),
              cudaSuccess);
    Vec sum(rows * cols);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = ::glm4v::BF16ToF32(::glm4v::F32ToBF16(x[i] + res[i]));
    ExpectClose(Download(*dres), sum, 0);
    ExpectClose(Download(y), ref::RmsNorm(sum, ToVec(w), rows, cols, 1.5625e-7), 1e-2);
  }
}

TEST_F(TypedKernelsTest, LayerNormIntoResidual) {
  const int64_t rows = 5, cols = 1792;
  auto x = ref::RandomFloats(rows * cols, 4, 3.f), res = ref::RandomFloats(rows * cols, 5);
  auto w = ref::RandomFloats(cols, 6), b = ref::RandomFloats(cols, 7);
  auto dx = UploadBF16(x), dres = UploadBF16(res), dw = UploadBF16(w), db = UploadBF16(b);
  ASSERT_EQ(LayerNorm<bf16>(dx->get(), dw->get(), db->get(), 1e-6f, rows, cols, nullptr,
                            dres->get(), nullptr),
            cudaSuccess);
  Vec want = ref::LayerNorm(ToVec(x), ToVec(w), ToVec(b), rows, cols, 1e-6);
  for (size_t i = 0; i < want.size(); ++i) want[i] += res[i];
  ExpectClose(Download(*dres), want, 1e-2);
}

TEST_F(TypedKernelsTest, SiluMulAndGeluBF16) {
  const int64_t rows = 3, half = 13696;
  auto x = ref::RandomFloats(rows * 2 * half, 8, 4.f);
  auto dx = UploadBF16(x);
  Buf<bf16> y(rows * half);
  ASSERT_EQ(SiluAndMul<bf16>(dx->get(), y.get(), rows, half, nullptr), cudaSuccess);
  ExpectClose(Download(y), ref::SiluAndMul(ToVec(x), rows, half), 1e-2);
  ASSERT_EQ(Gelu<bf16>(dx->get(), dx->get(), rows * 2 * half, nullptr), cudaSuccess);
  ExpectClose(Download(*dx), ref::Gelu(ToVec(x)), 1e-2);
}

TEST_F(TypedKernelsTest, RopeAndPagedKvWrite) {
  const int heads = 32, kv_heads = 2, d = 128, block = 16, blocks = 8;
  const int64_t rows = 5, width = (heads + 2 * kv_heads) * d, kw = kv_heads * d;
  auto qkv = ref::RandomFloats(rows * width, 9);
  auto dqkv = UploadBF16(qkv);
  const std::vector<int32_t> pos = {0, 7, 8, 8, 4000}, slots = {3, 17, 18, -1, 127};
  auto dpos = Upload(pos), dslots = Upload(slots);
  Buf<bf16> kc(blocks * block * kw), vc(blocks * block * kw);
  ASSERT_EQ(cudaMemset(kc.get(), 0, kc.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMemset(vc.get(), 0, vc.size() * 2), cudaSuccess);
  RopeParams p{heads, d, 64, 10000.0};
  ASSERT_EQ(RopeAndWriteKv<bf16>(dqkv->get(), rows, dpos->get(), dslots->get(), p, kv_heads,
                                 kc.get(), vc.get(), nullptr),
            cudaSuccess);
  const Vec got = Download(*dqkv), kgot = Download(kc), vgot = Download(vc);
  Vec q, k, v;
  for (int64_t r = 0; r < rows; ++r) {
    const Vec row = Slice(ToVec(qkv), r * width, (r + 1) * width);
    q.insert(q.end(), row.begin(), row.begin() + heads * d);
    k.insert(k.end(), row.begin() + heads * d, row.begin() + heads * d + kw);
    v.insert(v.end(), row.begin() + heads * d + kw, row.end());
  }
  const Vec q_rot = ref::Rope(q, rows, heads, d, 64, pos, 10000.0);
  const Vec k_rot = ref::Rope(k, rows, kv_heads, d, 64, pos, 10000.0);
  for (int64_t r = 0; r < rows; ++r) {
    ExpectClose(Slice(got, r * width, r * width + heads * d), Slice(q_rot, r * heads * d, (r + 1) * heads * d), 1e-2);
    if (slots[r] < 0) continue;
    ExpectClose(Slice(kgot, slots[r] * kw, (slots[r] + 1) * kw), Slice(k_rot, r * kw, (r + 1) * kw), 1e-2);
    ExpectClose(Slice(vgot, slots[r] * kw, (slots[r] + 1) * kw), Slice(v, r * kw, (r + 1) * kw), 0);
  }
}

// Decode and chunked prefill over a paged bf16 cache with GLM's 32/2 GQA, with and without
// split-K. Sequences have different lengths (short ones leave later splits empty).
TEST_F(TypedKernelsTest, PagedFlashAttentionGqaSplitK) {
  const int heads = 32, kv_heads = 2, d = 128, block = 16, num_blocks = 300;
  const int64_t kw = kv_heads * d, qw = heads * d;
  struct Seq {
    int num_q, kv_len;
  };
  const std::vector<Seq> seqs = {{1, 1}, {1, 1000}, {1, 37}, {7, 300}, {1, 2049}};
  auto kcache = ref::RandomFloats(num_blocks * block * kw, 10);
  auto vcache = ref::RandomFloats(num_blocks * block * kw, 11);
  auto dk = UploadBF16(kcache), dv = UploadBF16(vcache);
  // Block tables: a scrambled permutation of the blocks.
  std::vector<int32_t> tables;
  std::vector<AttnSequence> desc;
  int q_rows = 0, max_q = 0, max_kv = 0, next_block = 0;
  for (const Seq& s : seqs) {
    desc.push_back(AttnSequence{q_rows, s.num_q, s.kv_len, static_cast<int32_t>(tables.size())});
    for (int b = 0; b < (s.kv_len + block - 1) / block; ++b) {
      tables.push_back((next_block * 97 + 13) % num_blocks);
      ++next_block;
    }
    q_rows += s.num_q;
    max_q = std::max(max_q, s.num_q);
    max_kv = std::max(max_kv, s.kv_len);
  }
  ASSERT_LE(next_block, num_blocks);
  auto q = ref::RandomFloats(q_rows * qw, 12, 2.f);
  auto dq = UploadBF16(q);
  auto dtables = Upload(tables);
  auto ddesc = Upload(desc);
  for (int splits : {1, 4, 16}) {
    Buf<bf16> out(q_rows * qw);
    Buf<float> ws(std::max<size_t>(1, AttentionWorkspaceBytes(splits, q_rows, heads, d) / 4));
    AttnParams p;
    p.q = dq->get();
    p.q_stride = qw;
    p.k = dk->get();
    p.v = dv->get();
    p.kv_stride = kw;
    p.block_tables = dtables->get();
    p.block_size = block;
    p.out = out.get();
    p.out_stride = qw;
    p.seqs = ddesc->get();
    p.num_seqs = static_cast<int>(desc.size());
    p.max_num_q = max_q;
    p.max_kv_len = max_kv;
    p.total_q_rows = q_rows;
    p.num_heads = heads;
    p.num_kv_heads = kv_heads;
    p.head_dim = d;
    p.causal = true;
    p.scale = 1.f / std::sqrt(128.f);
    p.num_splits = splits;
    p.workspace = ws.get();
    ASSERT_EQ(FlashAttention(p, nullptr), cudaSuccess);
    const Vec got = Download(out);
    for (size_t i = 0; i < seqs.size(); ++i) {
      Vec k, v;
      for (int t = 0; t < seqs[i].kv_len; ++t) {
        const int64_t slot = int64_t{tables[desc[i].kv_begin + t / block]} * block + t % block;
        k.insert(k.end(), kcache.begin() + slot * kw, kcache.begin() + (slot + 1) * kw);
        v.insert(v.end(), vcache.begin() + slot * kw, vcache.begin() + (slot + 1) * kw);
      }
      const Vec want = ref::Attention(
          Slice(ToVec(q), desc[i].q_begin * qw, (desc[i].q_begin + seqs[i].num_q) * qw), k, v,
          seqs[i].num_q, seqs[i].kv_len, heads, kv_heads, d, true, p.scale);
      SCOPED_TRACE(testing::Message() << "splits " << splits << " seq " << i);
      ExpectClose(Slice(got, desc[i].q_begin * qw, (desc[i].q_begin + seqs[i].num_q) * qw), want,
                  2e-2);
    }
  }
}

// The vision tower's shape class: non-causal, head_dim 112 (not a power of two), contiguous
// Q/K/V read straight out of the fused QKV GEMM output (row stride 3 * hidden).
TEST_F(TypedKernelsTest, VisionFlashAttentionHeadDim112) {
  const int heads = 4, d = 112, len = 401, batch = 2;
  const int64_t hidden = heads * d, stride = 3 * hidden, rows = int64_t{batch} * len;
  auto qkv = ref::RandomFloats(rows * stride, 13, 2.f);
  auto dqkv = UploadBF16(qkv);
  std::vector<AttnSequence> desc = {{0, len, len, 0}, {len, len, len, len}};
  auto ddesc = Upload(desc);
  Buf<bf16> out(rows * hidden);
  AttnParams p;
  p.q = dqkv->get();
  p.q_stride = stride;
  p.k = dqkv->get() + hidden;
  p.v = dqkv->get() + 2 * hidden;
  p.kv_stride = stride;
  p.out = out.get();
  p.out_stride = hidden;
  p.seqs = ddesc->get();
  p.num_seqs = batch;
  p.max_num_q = len;
  p.max_kv_len = len;
  p.total_q_rows = static_cast<int>(rows);
  p.num_heads = heads;
  p.num_kv_heads = heads;
  p.head_dim = d;
  p.causal = false;
  p.scale = 1.f / std::sqrt(112.f);
  ASSERT_EQ(FlashAttention(p, nullptr), cudaSuccess);
  const Vec got = Download(out);
  for (int b = 0; b < batch; ++b) {
    Vec q, k, v;
    for (int64_t r = b * len; r < (b + 1) * len; ++r) {
      q.insert(q.end(), qkv.begin() + r * stride, qkv.begin() + r * stride + hidden);
      k.insert(k.end(), qkv.begin() + r * stride + hidden, qkv.begin() + r * stride + 2 * hidden);
      v.insert(v.end(), qkv.begin() + r * stride + 2 * hidden, qkv.begin() + (r + 1) * stride);
    }
    ExpectClose(Slice(got, b * len * hidden, (b + 1) * len * hidden),
                ref::Attention(q, k, v, len, len, heads, heads, d, false, p.scale), 2e-2);
  }
}

TEST_F(TypedKernelsTest, GemmBF16BiasAndAccumulate) {
  GemmRunner gemm;
  ASSERT_TRUE(gemm.Init().ok());
  for (int64_t m : {1, 8, 67}) {
    const int64_t n = 264, k = 136;
    auto x = ref::RandomFloats(m * k, 14), w = ref::RandomFloats(n * k, 15);
    auto b = ref::RandomFloats(n, 16), y0 = ref::RandomFloats(m * n, 17);
    auto dx = UploadBF16(x), dw = UploadBF16(w), db = UploadBF16(b), dy = UploadBF16(y0);
    GemmArgs args;
    args.m = m;
    args.n = n;
    args.k = k;
    args.x = dx->get();
    args.w = dw->get();
    args.bias = db->get();
    args.y = dy->get();
    args.beta = 1.f;  // y = x w^T + b + y0 (fused residual)
    ASSERT_TRUE(gemm.Run(args, nullptr).ok());
    Vec want = ref::Linear(ToVec(x), ToVec(w), ToVec(b), m, n, k);
    for (size_t i = 0; i < want.size(); ++i) want[i] += y0[i];
    ExpectClose(Download(*dy), want, 1e-2);
  }
  EXPECT_EQ(gemm.cached_plans(), 3u);
}

TEST_F(TypedKernelsTest, ArgmaxAndSampling) {
  const int64_t vocab = 151552;
  const int rows = 4;
  std::vector<float> logits = ref::RandomFloats(rows * vocab, 18);
  // Row 0: a clear winner. Row 1: three large logits (top-k 3 keeps exactly them).
  // Row 2: one token with ~all the mass (top-p 0.5 keeps only it). Row 3: greedy.
  logits[0 * vocab + 77] = 30.f;
  for (int t : {10, 20, 30}) logits[1 * vocab + t] = 8.f;
  logits[2 * vocab + 12345] = 40.f;
  logits[3 * vocab + 99] = 5.f;
  auto dl = Upload(logits);
  Buf<int32_t> out(rows);
  ASSERT_EQ(ArgmaxRows<float>(dl->get(), rows, vocab, out.get(), nullptr), cudaSuccess);
  std::vector<int32_t> ids = DownloadRaw(out);
  EXPECT_EQ(ids[0], 77);
  EXPECT_EQ(ids[1], 10);
  EXPECT_EQ(ids[2], 12345);

  std::map<int, int> counts;
  for (uint64_t step = 0; step < 300; ++step) {
    std::vector<SamplingParams> sp = {{1.f, 0, 1.f, step}, {1.f, 3, 1.f, step * 7 + 1},
                                      {1.f, 0, 0.5f, step * 13 + 2}, {0.f, 0, 1.f, step}};
    auto dsp = Upload(sp);
    ASSERT_EQ(SampleRows<float>(dl->get(), rows, vocab, dsp->get(), out.get(), nullptr),
              cudaSuccess);
    ids = DownloadRaw(out);
    EXPECT_EQ(ids[0], 77);  // e^30 dominates 151k tokens of weight <= e
    EXPECT_TRUE(ids[1] == 10 || ids[1] == 20 || ids[1] == 30) << ids[1];
    ++counts[ids[1]];
    EXPECT_EQ(ids[2], 12345);
    EXPECT_EQ(ids[3], 99);
  }
  // The three tied tokens are equally likely: each drawn roughly 100 of 300 times.
  for (int t : {10, 20, 30}) EXPECT_GT(counts[t], 50) << t;
}

TEST_F(TypedKernelsTest, GraphCaptureReplaysWithUpdatedInputs) {
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  const int64_t n = 1000;
  std::vector<float> ones(n, 1.f), twos(n, 2.f);
  auto x = Upload(ones), acc = Upload(ones);
  CudaGraphCache graphs;
  auto record = [&](cudaStream_t s) -> absl::Status {
    if (Add<float>(x->get(), acc->get(), n, s) != cudaSuccess) return absl::InternalError("add");
    if (Scale<float>(acc->get(), n, 0.5f, s) != cudaSuccess) return absl::InternalError("scale");
    return absl::OkStatus();
  };
  ASSERT_TRUE(graphs.Run(4, stream, record).ok());  // captures, then replays: (1 + 1) / 2 = 1
  ASSERT_EQ(cudaMemcpyAsync(x->get(), twos.data(), n * 4, cudaMemcpyHostToDevice, stream), cudaSuccess);
  ASSERT_TRUE(graphs.Run(4, stream, record).ok());  // replay: (1 + 2) / 2 = 1.5
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<float> got = DownloadRaw(*acc);
  EXPECT_FLOAT_EQ(got[0], 1.5f);
  EXPECT_FLOAT_EQ(got[n - 1], 1.5f);
  EXPECT_TRUE(graphs.Has(4));
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace glm4v::cuda
