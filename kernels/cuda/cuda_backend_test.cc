// CudaBackend (the f32 Backend interface on the GPU) against the double-precision oracles of
// kernels/testing, on random inputs with odd sizes. Skips without a CUDA device.
#include "kernels/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cuda/device_info.h"
#include "kernels/testing/op_reference.h"
#include "model/kv_cache.h"

namespace glm4v::cuda {
namespace {

namespace ref = ::glm4v::reference;
using ref::Vec;

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (DeviceCount() == 0) GTEST_SKIP() << NoDeviceReason();
    auto backend = GetCudaBackend();
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = static_cast<CudaBackend*>(*backend);
  }
  void TearDown() override {
    if (backend_ != nullptr) {
      EXPECT_TRUE(backend_->Synchronize().ok());
    }
  }

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
  void ExpectClose(const Vec& got, const Vec& want, double rel) {
    ASSERT_EQ(got.size(), want.size());
    const double scale = std::max(ref::MaxAbs(want), 1e-30);
    EXPECT_LE(ref::MaxAbsDiff(got, want), rel * scale);
  }

  CudaBackend* backend_ = nullptr;
};

TEST_F(CudaBackendTest, Linear) {
  for (int64_t m : {1, 7, 33, 130}) {
    const int64_t n = 37, k = 67;
    Tensor x = Random({m, k}, 1), w = Random({n, k}, 2), b = Random({n}, 3);
    Tensor y = Out({m, n});
    ASSERT_TRUE(backend_->Linear(x, w, &b, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), Read(b), m, n, k), 1e-4);
    ASSERT_TRUE(backend_->Linear(x, w, nullptr, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), {}, m, n, k), 1e-4);
  }
}

TEST_F(CudaBackendTest, Norms) {
  for (int64_t cols : {7, 64, 1792, 4097}) {
    const int64_t rows = 5;
    Tensor x = Random({rows, cols}, 4, 3.f), w = Random({cols}, 5), b = Random({cols}, 6);
    Tensor y = Out({rows, cols});
    ASSERT_TRUE(backend_->RmsNorm(x, w, 1.5625e-7f, &y).ok());
    ExpectClose(Read(y), ref::RmsNorm(Read(x), Read(w), rows, cols, 1.5625e-7), 1e-5);
    ASSERT_TRUE(backend_->LayerNorm(x, w, b, 1e-6f, &y).ok());
    ExpectClose(Read(y), ref::LayerNorm(Read(x), Read(w), Read(b), rows, cols, 1e-6), 1e-5);
  }
}

TEST_F(CudaBackendTest, Elementwise) {
  for (int64_t n : {1, 9, 4096, 13697}) {
    Tensor x = Random({3, n}, 7, 4.f);
    const Vec xs = Read(x);
    ASSERT_TRUE(backend_->GeluInPlace(&x).ok());
    ExpectClose(Read(x), ref::Gelu(xs), 1e-6);

    Tensor ab = Random({3, 2 * n}, 8, 4.f), y = Out({3, n});
    ASSERT_TRUE(backend_->SiluAndMul(ab, &y).ok());
    ExpectClose(Read(y), ref::SiluAndMul(Read(ab), 3, n), 1e-6);

    Tensor acc = Random({3, n}, 9), z = Random({3, n}, 10);
    Vec want = Read(acc);
    const Vec zs = Read(z);
    for (size_t i = 0; i < want.size(); ++i) want[i] = (want[i] + zs[i]) * 0.125;
    ASSERT_TRUE(backend_->AddInPlace(z, &acc).ok());
    ASSERT_TRUE(backend_->ScaleInPlace(0.125f, &acc).ok());
    ExpectClose(Read(acc), want, 1e-6);
  }
}

TEST_F(CudaBackendTest, DataMovement) {
  const int64_t rows = 6;
  Tensor x = Random({rows, 11}, 11);
  const Vec xs = Read(x);
  Tensor a = Out({rows, 4}), b = Out({rows, 7});
  ASSERT_TRUE(backend_->SplitColumns(x, {&a, &b}).ok());
  const Vec av = Read(a), bv = Read(b);
  for (int64_t r = 0; r < rows; ++r) {
    for (int c = 0; c < 4; ++c) EXPECT_EQ(av[r * 4 + c], xs[r * 11 + c]);
    for (int c = 0; c < 7; ++c) EXPECT_EQ(bv[r * 7 + c], xs[r * 11 + 4 + c]);
  }
  const std::vector<int32_t> ids = {5, 0, 5, 2};
  Tensor g = Out({4, 11});
  ASSERT_TRUE(backend_->GatherRows(x, ids, &g).ok());
  const Vec gv = Read(g);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 11; ++c) EXPECT_EQ(gv[i * 11 + c], xs[ids[i] * 11 + c]);
  Tensor dst = Random({9, 11}, 12);
  Vec want = Read(dst);
  std::copy(xs.begin() + 2 * 11, xs.begin() + 5 * 11, want.begin() + 4 * 11);
  ASSERT_TRUE(backend_->CopyRows(x, 2, 3, &dst, 4).ok());
  ExpectClose(Read(dst), want, 0);
}

TEST_F(CudaBackendTest, PatchConvAsGemm) {
  const int64_t b = 2, c = 3, h = 28, w = 42, out_ch = 5;
  const int k = 14;
  Tensor image = Random({b, c, h, w}, 13);
  Tensor weight = Random({out_ch, c * k * k}, 14), bias = Random({out_ch}, 15);
  const int64_t patches = b * (h / k) * (w / k);
  Tensor cols = Out({patches, c * k * k}), y = Out({patches, out_ch});
  ASSERT_TRUE(backend_->PatchIm2Col(image, ImageLayout::kChannelsFirst, k, &cols).ok());
  ASSERT_TRUE(backend_->Linear(cols, weight, &bias, &y).ok());
  ExpectClose(Read(y),
              ref::PatchConv(Read(image), Read(weight), Read(bias), b, c, h, w, out_ch, k), 1e-4);

  // Channels-last input (the 2x2 conv over the vision token grid): same result after transposing.
  const Vec img = Read(image);
  std::vector<float> nhwc(img.size());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t y0 = 0; y0 < h; ++y0)
        for (int64_t x0 = 0; x0 < w; ++x0)
          nhwc[((bi * h + y0) * w + x0) * c + ci] =
              static_cast<float>(img[((bi * c + ci) * h + y0) * w + x0]);
  Tensor image_last = Make({b, h, w, c}, nhwc);
  Tensor cols_last = Out({patches, c * k * k});
  ASSERT_TRUE(backend_->PatchIm2Col(image_last, ImageLayout::kChannelsLast, k, &cols_last).ok());
  ExpectClose(Read(cols_last), Read(cols), 0);
}

TEST_F(CudaBackendTest, Rope) {
  const int64_t rows = 9;
  const int heads = 3, head_dim = 128, rotary = 64;
  Tensor x = Random({rows, heads * head_dim}, 16);
  const Vec xs = Read(x);
  std::vector<int32_t> pos = {0, 1, 2, 3, 3, 3, 4, 1000, 31999};
  ASSERT_TRUE(backend_->ApplyRope(&x, pos, head_dim, rotary, 10000.0).ok());
  ExpectClose(Read(x), ref::Rope(xs, rows, heads, head_dim, rotary, pos, 10000.0), 1e-5);
}

TEST_F(CudaBackendTest, AttentionCausalAndFull) {
  struct Case {
    int batch, len, heads, kv_heads, head_dim;
    bool causal;
  };
  for (const Case& c : {Case{2, 37, 4, 2, 128, true}, Case{1, 129, 2, 2, 112, false},
                        Case{3, 5, 32, 2, 128, true}, Case{1, 200, 3, 1, 64, false}}) {
    const int64_t rows = int64_t{c.batch} * c.len;
    Tensor q = Random({rows, c.heads * c.head_dim}, 17);
    Tensor k = Random({rows, c.kv_heads * c.head_dim}, 18);
    Tensor v = Random({rows, c.kv_heads * c.head_dim}, 19);
    Tensor out = Out({rows, c.heads * c.head_dim});
    const float scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));
    ASSERT_TRUE(backend_->Attention(q, k, v, c.batch, c.heads, c.kv_heads, c.causal, scale, &out)
                    .ok());
    const Vec qs = Read(q), ks = Read(k), vs = Read(v), got = Read(out);
    ASSERT_TRUE(backend_->Synchronize().ok());
    const int64_t qw = int64_t{c.heads} * c.head_dim, kw = int64_t{c.kv_heads} * c.head_dim;
    for (int b = 0; b < c.batch; ++b) {
      auto slice = [&](const Vec& src, int64_t w) {
        return Vec(src.begin() + b * c.len * w, src.begin() + (b + 1) * c.len * w);
      };
      const Vec want = ref::Attention(slice(qs, qw), slice(ks, kw), slice(vs, kw), c.len, c.len,
                                      c.heads, c.kv_heads, c.head_dim, c.causal, scale);
      // bf16 tensor-core attention: inputs and probabilities rounded to 8 bits of mantissa.
      ExpectClose(slice(got, qw), want, 2e-2);
    }
  }
}

TEST_F(CudaBackendTest, PagedAttentionOverHostCache) {
  KvCacheShape shape;
  shape.num_layers = 2;
  shape.num_blocks = 16;
  shape.block_size = 16;
  shape.num_kv_heads = 2;
  shape.head_dim = 128;
  PagedKvCache cache(shape);
  const int heads = 8, layer = 1;
  // Sequence 0: 20 cached + 3 new; sequence 1: 0 cached + 5 new (prefill).
  const std::vector<int32_t> table0 = {7, 2}, table1 = {11};
  const int64_t kw = 2 * 128;
  std::vector<int32_t> slots;
  for (int t = 0; t < 23; ++t) slots.push_back(table0[t / 16] * 16 + t % 16);
  for (int t = 0; t < 5; ++t) slots.push_back(table1[0] * 16 + t);
  Tensor k = Random({28, kw}, 20), v = Random({28, kw}, 21);
  ASSERT_TRUE(backend_->WriteKvCache(k, v, slots, layer, &cache).ok());
  Tensor q = Random({8, heads * 128}, 22), out = Out({8, heads * 128});
  std::vector<PagedSequence> seqs = {{0, 3, 20, table0}, {3, 5, 0, table1}};
  const float scale = 1.f / std::sqrt(128.f);
  ASSERT_TRUE(backend_->PagedAttention(q, cache, layer, seqs, heads, scale, &out).ok());
  const Vec qs = Read(q), ks = Read(k), vs = Read(v), got = Read(out);
  const int64_t qw = heads * 128;
  const Vec want0 = ref::Attention(Vec(qs.begin(), qs.begin() + 3 * qw),
                                   Vec(ks.begin(), ks.begin() + 23 * kw),
                                   Vec(vs.begin(), vs.begin() + 23 * kw), 3, 23, heads, 2, 128,
                                   true, scale);
  const Vec want1 = ref::Attention(Vec(qs.begin() + 3 * qw, qs.end()),
                                   Vec(ks.begin() + 23 * kw, ks.end()),
                                   Vec(vs.begin() + 23 * kw, vs.end()), 5, 5, heads, 2, 128, true,
                                   scale);
  ExpectClose(Vec(got.begin(), got.begin() + 3 * qw), want0, 2e-2);
  ExpectClose(Vec(got.begin() + 3 * qw, got.end()), want1, 2e-2);
}

TEST_F(CudaBackendTest, Argmax) {
  const int64_t rows = 3, cols = 151552 + 7;
  std::vector<float> x = ref::RandomFloats(rows * cols, 23);
  x[0 * cols + 5] = 9.f;
  x[1 * cols + cols - 1] = 9.f;
  x[2 * cols + 100] = 9.f;
  x[2 * cols + 200] = 9.f;  // tie: first wins
  Tensor t = Make({rows, cols}, x);
  std::vector<int32_t> ids;
  ASSERT_TRUE(backend_->Argmax(t, &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{5, static_cast<int32_t>(cols - 1), 100}));
}

}  // namespace
}  // namespace glm4v::cuda
