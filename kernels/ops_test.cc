// Every Backend op against the naive double-precision oracle (kernels/testing/op_reference.h),
// on random inputs with odd sizes and with GLM-4V's real sizes, once per backend linked into
// this binary (AvailableBackends). A backend whose device is missing (UNAVAILABLE) skips.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "kernels/testing/op_reference.h"
#include "model/kv_cache.h"

namespace glm4v {
namespace {

namespace ref = reference;
using ref::Vec;

// max |got - want| <= tolerance * max |want|, per op family and backend.
struct Tolerances {
  double linear;     // also the patch conv (im2col + Linear)
  double norm;
  double pointwise;  // gelu, silu*mul, add, scale
  double rope;
  double attention;       // exact-precision attention
  double bf16_attention;  // head dims that run on bf16 tensor cores
};

// CPU: f32 math with f64-free accumulation order differences only.
constexpr Tolerances kCpuTolerances = {1e-5, 1e-5, 1e-6, 2e-6, 1e-5, 1e-5};
// CUDA: fp32 cuBLASLt (other summation order over larger k), f32 sincos for RoPE, and bf16
// tensor-core attention for head dims 64..128 (operands and probabilities rounded to 8 bits of
// mantissa); other head dims run an f32 kernel.
constexpr Tolerances kCudaTolerances = {1e-4, 1e-5, 1e-6, 1e-5, 1e-5, 2e-2};

class OpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto backend = GetBackend(GetParam());
    if (backend.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << GetParam() << ": " << backend.status().message();
    }
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *backend;
    tol_ = GetParam() == "cpu" ? kCpuTolerances : kCudaTolerances;
  }

  // A device tensor holding `values`.
  Tensor Make(Shape shape, const std::vector<float>& values) {
    auto t = backend_->Upload(Tensor::FromF32(std::move(shape), values));
    EXPECT_TRUE(t.ok()) << t.status();
    return *t;
  }
  Tensor Random(Shape shape, uint32_t seed, float scale = 1.0f) {
    return Make(shape, ref::RandomFloats(NumElements(shape), seed, scale));
  }
  Tensor Out(Shape shape) { return backend_->Empty(DType::kF32, std::move(shape)); }
  Vec Read(const Tensor& t) {
    auto host = backend_->Download(t);
    EXPECT_TRUE(host.ok()) << host.status();
    return host.ok() ? ref::ToDouble(*host) : Vec();
  }
  // max |got - want| <= rel * max |want|.
  void ExpectClose(const Vec& got, const Vec& want, double rel) {
    ASSERT_EQ(got.size(), want.size());
    const double scale = std::max(ref::MaxAbs(want), 1e-30);
    EXPECT_LE(ref::MaxAbsDiff(got, want), rel * scale);
  }
  double AttentionTolerance(int head_dim) const {
    // kernels/cuda/attention.h instantiates these on tensor cores; the CPU has no bf16 path.
    const bool tensor_core = head_dim == 64 || head_dim == 80 || head_dim == 96 ||
                             head_dim == 112 || head_dim == 128;
    return tensor_core ? tol_.bf16_attention : tol_.attention;
  }

  Backend* backend_ = nullptr;
  Tolerances tol_ = kCpuTolerances;
};

TEST_P(OpsTest, LinearWithAndWithoutBias) {
  struct Dims {
    int64_t m, n, k;
  };
  for (const Dims& d : {Dims{1, 13, 19}, Dims{7, 13, 19}, Dims{33, 13, 19}, Dims{130, 37, 67}}) {
    Tensor x = Random({d.m, d.k}, 1), w = Random({d.n, d.k}, 2), b = Random({d.n}, 3);
    Tensor y = Out({d.m, d.n});
    ASSERT_TRUE(backend_->Linear(x, w, &b, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), Read(b), d.m, d.n, d.k), tol_.linear);
    ASSERT_TRUE(backend_->Linear(x, w, nullptr, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), {}, d.m, d.n, d.k), tol_.linear);
  }
}

TEST_P(OpsTest, LinearRejectsMismatchedShapes) {
  Tensor x = Random({3, 5}, 1), w = Random({4, 6}, 2), y = Out({3, 4});
  EXPECT_EQ(backend_->Linear(x, w, nullptr, &y).code(), absl::StatusCode::kInvalidArgument);
  Tensor w2 = Random({4, 5}, 2), y2 = Out({3, 5});
  EXPECT_EQ(backend_->Linear(x, w2, nullptr, &y2).code(), absl::StatusCode::kInvalidArgument);
  Tensor bias = Random({5}, 3);
  EXPECT_EQ(backend_->Linear(x, w2, &bias, &y).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(OpsTest, RmsNorm) {
  // Odd widths, and GLM's (4096) / the vision tower's (1792) plus one for the block tail.
  for (int64_t dim : {37, 64, 1792, 4097}) {
    const int64_t rows = 5;
    Tensor x = Random({rows, dim}, 4, 3.0f), w = Random({dim}, 5), y = Out({rows, dim});
    ASSERT_TRUE(backend_->RmsNorm(x, w, 1.5625e-7f, &y).ok());
    ExpectClose(Read(y), ref::RmsNorm(Read(x), Read(w), rows, dim, 1.5625e-7), tol_.norm);
  }
}

TEST_P(OpsTest, LayerNorm) {
  for (int64_t dim : {29, 64, 1792, 4097}) {
    const int64_t rows = 6;
    Tensor x = Random({rows, dim}, 6, 2.0f), w = Random({dim}, 7), b = Random({dim}, 8);
    Tensor y = Out({rows, dim});
    ASSERT_TRUE(backend_->LayerNorm(x, w, b, 1e-5f, &y).ok());
    ExpectClose(Read(y), ref::LayerNorm(Read(x), Read(w), Read(b), rows, dim, 1e-5), tol_.norm);
  }
}

TEST_P(OpsTest, GeluIsExactErfGelu) {
  for (int64_t n : {1, 1001, 13697}) {
    Tensor x = Random({3, n}, 9, 6.0f);
    Vec want = ref::Gelu(Read(x));
    ASSERT_TRUE(backend_->GeluInPlace(&x).ok());
    ExpectClose(Read(x), want, tol_.pointwise);
  }
}

TEST_P(OpsTest, SiluAndMul) {
  for (int64_t half : {23, 13696}) {
    Tensor x = Random({7, 2 * half}, 10, 5.0f), y = Out({7, half});
    ASSERT_TRUE(backend_->SiluAndMul(x, &y).ok());
    ExpectClose(Read(y), ref::SiluAndMul(Read(x), 7, half), tol_.pointwise);
  }
  Tensor odd = Random({2, 5}, 1), y2 = Out({2, 2});
  EXPECT_FALSE(backend_->SiluAndMul(odd, &y2).ok());
}

TEST_P(OpsTest, AddAndScale) {
  for (int64_t n : {9, 4096}) {
    Tensor a = Random({4, n}, 11), b = Random({4, n}, 12);
    Vec va = Read(a), vb = Read(b);
    ASSERT_TRUE(backend_->AddInPlace(a, &b).ok());
    ASSERT_TRUE(backend_->ScaleInPlace(0.125f, &b).ok());
    Vec want(va.size());
    for (size_t i = 0; i < va.size(); ++i) want[i] = (va[i] + vb[i]) * 0.125;
    ExpectClose(Read(b), want, tol_.pointwise);
  }
}

TEST_P(OpsTest, SplitGatherCopyRows) {
  Tensor x = Random({5, 11}, 13);
  Vec vx = Read(x);
  Tensor p0 = Out({5, 3}), p1 = Out({5, 6}), p2 = Out({5, 2});
  Tensor* parts[] = {&p0, &p1, &p2};
  ASSERT_TRUE(backend_->SplitColumns(x, parts).ok());
  int col = 0;
  for (Tensor* p : parts) {
    Vec got = Read(*p);
    for (int r = 0; r < 5; ++r) {
      for (int c = 0; c < p->dim(1); ++c) EXPECT_EQ(got[r * p->dim(1) + c], vx[r * 11 + col + c]);
    }
    col += p->dim(1);
  }
  Tensor bad = Out({5, 4});
  Tensor* bad_parts[] = {&p0, &bad};
  EXPECT_FALSE(backend_->SplitColumns(x, bad_parts).ok());

  std::vector<int32_t> rows = {4, 0, 4, 2};
  Tensor g = Out({4, 11});
  ASSERT_TRUE(backend_->GatherRows(x, rows, &g).ok());
  Vec vg = Read(g);
  for (int i = 0; i < 4; ++i) {
    for (int c = 0; c < 11; ++c) EXPECT_EQ(vg[i * 11 + c], vx[rows[i] * 11 + c]);
  }
  std::vector<int32_t> out_of_range = {5};
  Tensor g1 = Out({1, 11});
  EXPECT_EQ(backend_->GatherRows(x, out_of_range, &g1).code(),
            absl::StatusCode::kInvalidArgument);

  Tensor dst = Make({3, 11}, std::vector<float>(33, 0.0f));
  ASSERT_TRUE(backend_->CopyRows(x, 2, 2, &dst, 1).ok());
  Vec vd = Read(dst);
  for (int c = 0; c < 11; ++c) {
    EXPECT_EQ(vd[c], 0.0);
    EXPECT_EQ(vd[11 + c], vx[2 * 11 + c]);
    EXPECT_EQ(vd[22 + c], vx[3 * 11 + c]);
  }
  EXPECT_FALSE(backend_->CopyRows(x, 4, 2, &dst, 0).ok());
}

TEST_P(OpsTest, PatchConvChannelsFirstAndLast) {
  struct Case {
    int64_t b, c, h, w, out;
    int k;
  };
  // Odd sizes, and the vision tower's 14x14 patches.
  for (const Case& t : {Case{2, 3, 15, 10, 7, 5}, Case{2, 3, 28, 42, 5, 14}}) {
    const int k = t.k;
    Tensor image = Random({t.b, t.c, t.h, t.w}, 14), weight = Random({t.out, t.c * k * k}, 15);
    Tensor bias = Random({t.out}, 16);
    Vec want = ref::PatchConv(Read(image), Read(weight), Read(bias), t.b, t.c, t.h, t.w, t.out, k);
    const int64_t patches = t.b * (t.h / k) * (t.w / k);
    Tensor cols = Out({patches, t.c * k * k}), y = Out({patches, t.out});
    ASSERT_TRUE(backend_->PatchIm2Col(image, ImageLayout::kChannelsFirst, k, &cols).ok());
    ASSERT_TRUE(backend_->Linear(cols, weight, &bias, &y).ok());
    ExpectClose(Read(y), want, tol_.linear);

    // The same image stored [b, h, w, c] (how the vision tower holds its token grid).
    Vec nchw = Read(image);
    std::vector<float> nhwc(nchw.size());
    for (int64_t bi = 0; bi < t.b; ++bi)
      for (int64_t ci = 0; ci < t.c; ++ci)
        for (int64_t yi = 0; yi < t.h; ++yi)
          for (int64_t xi = 0; xi < t.w; ++xi)
            nhwc[((bi * t.h + yi) * t.w + xi) * t.c + ci] =
                nchw[((bi * t.c + ci) * t.h + yi) * t.w + xi];
    Tensor image_last = Make({t.b, t.h, t.w, t.c}, nhwc);
    ASSERT_TRUE(backend_->PatchIm2Col(image_last, ImageLayout::kChannelsLast, k, &cols).ok());
    ASSERT_TRUE(backend_->Linear(cols, weight, &bias, &y).ok());
    ExpectClose(Read(y), want, tol_.linear);
  }
  Tensor image = Random({2, 3, 15, 10}, 14), cols = Out({12, 3 * 25});
  EXPECT_FALSE(backend_->PatchIm2Col(image, ImageLayout::kChannelsFirst, 4, &cols).ok());
}

TEST_P(OpsTest, RopeRotatesFirstHalfInterleaved) {
  struct Case {
    int heads, head_dim, rotary;
    std::vector<int32_t> positions;
  };
  // rotary 6 of 14: a pass-through tail; GLM's 64 of 128 with positions near the 32k limit.
  const std::vector<Case> cases = {{3, 14, 6, {0, 1, 5, 5, 1000, 32767}},
                                   {3, 128, 64, {0, 1, 2, 3, 3, 3, 4, 1000, 31999}}};
  for (const Case& c : cases) {
    const int64_t rows = static_cast<int64_t>(c.positions.size());
    for (double base : {10000.0, 25000.0}) {
      Tensor x = Random({rows, c.heads * c.head_dim}, 17);
      Vec want = ref::Rope(Read(x), rows, c.heads, c.head_dim, c.rotary, c.positions, base);
      ASSERT_TRUE(backend_->ApplyRope(&x, c.positions, c.head_dim, c.rotary, base).ok());
      ExpectClose(Read(x), want, tol_.rope);
    }
  }
  const int64_t rows = 6;
  const int heads = 3, head_dim = 14;
  Tensor x = Random({rows, heads * head_dim}, 17);
  EXPECT_FALSE(backend_->ApplyRope(&x, std::vector<int32_t>(5, 0), head_dim, 6, 1e4).ok());
  EXPECT_FALSE(
      backend_->ApplyRope(&x, std::vector<int32_t>(rows, 0), head_dim, 5, 1e4).ok());
}

TEST_P(OpsTest, DenseAttentionGqaCausalAndFull) {
  struct Case {
    int batch, len, heads, kv_heads, d;
    float qk_range, scale;
  };
  // Odd head_dim with sharp scores; then GLM-like ones with 1/sqrt(d) scaling: decoder 128
  // (32 heads, 2 groups), vision 112, and 64.
  const float s64 = 0.125f, s112 = 1.f / std::sqrt(112.f), s128 = 1.f / std::sqrt(128.f);
  for (const Case& c : {Case{3, 11, 6, 2, 9, 2.f, 0.3f}, Case{2, 37, 4, 2, 128, 1.f, s128},
                        Case{1, 129, 2, 2, 112, 1.f, s112}, Case{3, 5, 32, 2, 128, 1.f, s128},
                        Case{1, 200, 3, 1, 64, 1.f, s64}}) {
    const int64_t rows = int64_t{c.batch} * c.len;
    Tensor q = Random({rows, c.heads * c.d}, 18, c.qk_range);
    Tensor k = Random({rows, c.kv_heads * c.d}, 19, c.qk_range);
    Tensor v = Random({rows, c.kv_heads * c.d}, 20);
    Vec vq = Read(q), vk = Read(k), vv = Read(v);
    const float scale = c.scale;
    for (bool causal : {false, true}) {
      Tensor out = Out({rows, c.heads * c.d});
      ASSERT_TRUE(
          backend_->Attention(q, k, v, c.batch, c.heads, c.kv_heads, causal, scale, &out).ok());
      Vec got = Read(out), want;
      for (int b = 0; b < c.batch; ++b) {
        auto slice = [&](const Vec& src, int64_t width) {
          return Vec(src.begin() + b * c.len * width, src.begin() + (b + 1) * c.len * width);
        };
        Vec part = ref::Attention(slice(vq, c.heads * c.d), slice(vk, c.kv_heads * c.d),
                                  slice(vv, c.kv_heads * c.d), c.len, c.len, c.heads, c.kv_heads,
                                  c.d, causal, scale);
        want.insert(want.end(), part.begin(), part.end());
      }
      ExpectClose(got, want, AttentionTolerance(c.d));
    }
  }
  const int batch = 3, len = 11, heads = 6, kv_heads = 2, d = 9;
  Tensor q = Random({batch * len, heads * d}, 18), k = Random({batch * len, kv_heads * d}, 19);
  Tensor v = Random({batch * len, kv_heads * d}, 20), out = Out({batch * len, heads * d});
  EXPECT_FALSE(backend_->Attention(q, k, v, 2, heads, kv_heads, false, 1.f, &out).ok());
  EXPECT_FALSE(backend_->Attention(q, k, v, batch, heads, 4, false, 1.f, &out).ok());
}

TEST_P(OpsTest, PagedAttentionMatchesDenseOverCachedPlusNew) {
  struct Seq {
    int64_t cached, fresh;
    std::vector<int32_t> blocks;
  };
  struct Case {
    int block_size, head_dim, heads;
    float qk_range, scale;
    std::vector<Seq> seqs;  // (num_cached, num_new): decode step, chunked prefill, prefill
  };
  const std::vector<Case> cases = {
      {4, 10, 4, 2.f, 0.2f, {{9, 1, {7, 2, 19}}, {5, 6, {3, 11, 0, 16}}, {0, 7, {5, 9}}}},
      {16, 128, 8, 1.f, 1.f / std::sqrt(128.f), {{20, 3, {7, 2}}, {0, 5, {11}}}}};
  for (const Case& c : cases) {
    KvCacheShape shape;
    shape.num_layers = 2;
    shape.num_blocks = 20;
    shape.block_size = c.block_size;
    shape.num_kv_heads = 2;
    shape.head_dim = c.head_dim;
    PagedKvCache cache(shape);
    const int layer = 1;
    const int64_t kv_width = shape.num_kv_heads * shape.head_dim;
    const int64_t q_width = int64_t{c.heads} * c.head_dim;
    const float scale = c.scale;
    int64_t total_new = 0;
    for (const Seq& s : c.seqs) total_new += s.fresh;
    Tensor q = Random({total_new, q_width}, 21, c.qk_range);
    Vec vq = Read(q), want;
    std::vector<PagedSequence> paged;
    int64_t row = 0;
    uint32_t seed = 100;
    for (const Seq& s : c.seqs) {
      const int64_t n = s.cached + s.fresh;
      Tensor k = Random({n, kv_width}, seed++, c.qk_range), v = Random({n, kv_width}, seed++);
      std::vector<int32_t> slots(n);
      for (int64_t t = 0; t < n; ++t) {
        slots[t] = s.blocks[t / shape.block_size] * shape.block_size + t % shape.block_size;
      }
      ASSERT_TRUE(backend_->WriteKvCache(k, v, slots, layer, &cache).ok());
      Vec sq(vq.begin() + row * q_width, vq.begin() + (row + s.fresh) * q_width);
      Vec part = ref::Attention(sq, Read(k), Read(v), s.fresh, n, c.heads, shape.num_kv_heads,
                                shape.head_dim, true, scale);
      want.insert(want.end(), part.begin(), part.end());
      paged.push_back({row, s.fresh, s.cached, s.blocks});
      row += s.fresh;
    }
    Tensor out = Out({total_new, q_width});
    ASSERT_TRUE(backend_->PagedAttention(q, cache, layer, paged, c.heads, scale, &out).ok());
    ExpectClose(Read(out), want, AttentionTolerance(c.head_dim));

    // A block table too short for cached + new tokens, and a block id outside the cache.
    std::vector<int32_t> short_table = {c.seqs[0].blocks[0]};
    std::vector<PagedSequence> bad = {{0, 1, c.block_size + 1, short_table}};
    EXPECT_EQ(backend_->PagedAttention(q, cache, layer, bad, c.heads, scale, &out).code(),
              absl::StatusCode::kInvalidArgument);
    std::vector<int32_t> wild_table = {7, 20};
    bad = {{0, 1, c.block_size, wild_table}};
    EXPECT_FALSE(backend_->PagedAttention(q, cache, layer, bad, c.heads, scale, &out).ok());
    Tensor k1 = Random({1, kv_width}, 1), v1 = Random({1, kv_width}, 2);
    std::vector<int32_t> bad_slot = {20 * c.block_size};
    EXPECT_FALSE(backend_->WriteKvCache(k1, v1, bad_slot, layer, &cache).ok());
  }
}

TEST_P(OpsTest, ArgmaxFirstMaximum) {
  Tensor x = Make({3, 5}, {0, 3, 1, 3, 2, -5, -4, -9, -4, -7, 1, 1, 1, 1, 8});
  std::vector<int32_t> ids;
  ASSERT_TRUE(backend_->Argmax(x, &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 1, 4}));

  // GLM's vocabulary plus a ragged tail; maxima at the ends and a tie far apart.
  const int64_t rows = 3, cols = 151552 + 7;
  std::vector<float> big = ref::RandomFloats(rows * cols, 23);
  big[0 * cols + 5] = 9.f;
  big[1 * cols + cols - 1] = 9.f;
  big[2 * cols + 100] = 9.f;
  big[2 * cols + 200] = 9.f;
  ASSERT_TRUE(backend_->Argmax(Make({rows, cols}, big), &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{5, static_cast<int32_t>(cols - 1), 100}));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OpsTest, ::testing::ValuesIn(AvailableBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace glm4v
