// Every Backend op against the naive double-precision oracle (kernels/testing/op_reference.h),
// on random inputs with odd sizes. Parameterized by backend name so a device backend reuses it.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "kernels/cpu/parallel.h"
#include "kernels/testing/op_reference.h"

namespace glm4v {
namespace {

namespace ref = reference;
using ref::Vec;

class OpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto backend = GetBackend(GetParam());
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *backend;
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
    return ref::ToDouble(*host);
  }
  // max |got - want| <= rel * max |want|.
  void ExpectClose(const Vec& got, const Vec& want, double rel = 1e-5) {
    ASSERT_EQ(got.size(), want.size());
    const double scale = std::max(ref::MaxAbs(want), 1e-30);
    EXPECT_LE(ref::MaxAbsDiff(got, want), rel * scale);
  }

  Backend* backend_ = nullptr;
};

TEST_P(OpsTest, LinearWithAndWithoutBias) {
  for (int64_t m : {1, 7, 33}) {
    const int64_t n = 13, k = 19;
    Tensor x = Random({m, k}, 1), w = Random({n, k}, 2), b = Random({n}, 3);
    Tensor y = Out({m, n});
    ASSERT_TRUE(backend_->Linear(x, w, &b, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), Read(b), m, n, k));
    ASSERT_TRUE(backend_->Linear(x, w, nullptr, &y).ok());
    ExpectClose(Read(y), ref::Linear(Read(x), Read(w), {}, m, n, k));
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
  const int64_t rows = 5, dim = 37;
  Tensor x = Random({rows, dim}, 4, 3.0f), w = Random({dim}, 5), y = Out({rows, dim});
  ASSERT_TRUE(backend_->RmsNorm(x, w, 1.5625e-7f, &y).ok());
  ExpectClose(Read(y), ref::RmsNorm(Read(x), Read(w), rows, dim, 1.5625e-7));
}

TEST_P(OpsTest, LayerNorm) {
  const int64_t rows = 6, dim = 29;
  Tensor x = Random({rows, dim}, 6, 2.0f), w = Random({dim}, 7), b = Random({dim}, 8);
  Tensor y = Out({rows, dim});
  ASSERT_TRUE(backend_->LayerNorm(x, w, b, 1e-5f, &y).ok());
  ExpectClose(Read(y), ref::LayerNorm(Read(x), Read(w), Read(b), rows, dim, 1e-5));
}

TEST_P(OpsTest, GeluIsExactErfGelu) {
  Tensor x = Random({3, 1001}, 9, 6.0f);
  Vec want = ref::Gelu(Read(x));
  ASSERT_TRUE(backend_->GeluInPlace(&x).ok());
  ExpectClose(Read(x), want, 1e-6);
}

TEST_P(OpsTest, SiluAndMul) {
  Tensor x = Random({7, 2 * 23}, 10, 5.0f), y = Out({7, 23});
  ASSERT_TRUE(backend_->SiluAndMul(x, &y).ok());
  ExpectClose(Read(y), ref::SiluAndMul(Read(x), 7, 23), 1e-6);
  Tensor odd = Random({2, 5}, 1), y2 = Out({2, 2});
  EXPECT_FALSE(backend_->SiluAndMul(odd, &y2).ok());
}

TEST_P(OpsTest, AddAndScale) {
  Tensor a = Random({4, 9}, 11), b = Random({4, 9}, 12);
  Vec va = Read(a), vb = Read(b);
  ASSERT_TRUE(backend_->AddInPlace(a, &b).ok());
  ASSERT_TRUE(backend_->ScaleInPlace(0.125f, &b).ok());
  Vec want(va.size());
  for (size_t i = 0; i < va.size(); ++i) want[i] = (va[i] + vb[i]) * 0.125;
  ExpectClose(Read(b), want, 1e-6);
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
  const int64_t b = 2, c = 3, h = 15, w = 10, out = 7;
  const int k = 5;
  Tensor image = Random({b, c, h, w}, 14), weight = Random({out, c * k * k}, 15);
  Tensor bias = Random({out}, 16);
  Vec want = ref::PatchConv(Read(image), Read(weight), Read(bias), b, c, h, w, out, k);
  const int64_t patches = b * (h / k) * (w / k);
  Tensor cols = Out({patches, c * k * k}), y = Out({patches, out});
  ASSERT_TRUE(backend_->PatchIm2Col(image, ImageLayout::kChannelsFirst, k, &cols).ok());
  ASSERT_TRUE(backend_->Linear(cols, weight, &bias, &y).ok());
  ExpectClose(Read(y), want);

  // The same image stored [b, h, w, c] (how the vision tower holds its token grid).
  Vec nchw = Read(image);
  std::vector<float> nhwc(nchw.size());
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t yi = 0; yi < h; ++yi)
        for (int64_t xi = 0; xi < w; ++xi)
          nhwc[((bi * h + yi) * w + xi) * c + ci] = nchw[((bi * c + ci) * h + yi) * w + xi];
  Tensor image_last = Make({b, h, w, c}, nhwc);
  ASSERT_TRUE(backend_->PatchIm2Col(image_last, ImageLayout::kChannelsLast, k, &cols).ok());
  ASSERT_TRUE(backend_->Linear(cols, weight, &bias, &y).ok());
  ExpectClose(Read(y), want);
  EXPECT_FALSE(backend_->PatchIm2Col(image, ImageLayout::kChannelsFirst, 4, &cols).ok());
}

TEST_P(OpsTest, RopeRotatesFirstHalfInterleaved) {
  const int64_t rows = 6;
  const int heads = 3, head_dim = 14, rotary = 7 - 1;  // rotary 6 of 14: pass-through tail
  std::vector<int32_t> positions = {0, 1, 5, 5, 1000, 32767};
  for (double base : {10000.0, 25000.0}) {
    Tensor x = Random({rows, heads * head_dim}, 17);
    Vec want = ref::Rope(Read(x), rows, heads, head_dim, rotary, positions, base);
    ASSERT_TRUE(backend_->ApplyRope(&x, positions, head_dim, rotary, base).ok());
    ExpectClose(Read(x), want, 2e-6);
  }
  Tensor x = Random({rows, heads * head_dim}, 17);
  EXPECT_FALSE(backend_->ApplyRope(&x, std::vector<int32_t>(5, 0), head_dim, rotary, 1e4).ok());
  EXPECT_FALSE(backend_->ApplyRope(&x, positions, head_dim, 5, 1e4).ok());
}

TEST_P(OpsTest, DenseAttentionGqaCausalAndFull) {
  const int batch = 3, len = 11, heads = 6, kv_heads = 2, d = 9;
  Tensor q = Random({batch * len, heads * d}, 18, 2.0f);
  Tensor k = Random({batch * len, kv_heads * d}, 19, 2.0f);
  Tensor v = Random({batch * len, kv_heads * d}, 20);
  Vec vq = Read(q), vk = Read(k), vv = Read(v);
  for (bool causal : {false, true}) {
    Tensor out = Out({batch * len, heads * d});
    ASSERT_TRUE(backend_->Attention(q, k, v, batch, heads, kv_heads, causal, 0.3f, &out).ok());
    Vec got = Read(out), want;
    for (int b = 0; b < batch; ++b) {
      auto slice = [&](const Vec& src, int64_t width) {
        return Vec(src.begin() + b * len * width, src.begin() + (b + 1) * len * width);
      };
      Vec part = ref::Attention(slice(vq, heads * d), slice(vk, kv_heads * d),
                                slice(vv, kv_heads * d), len, len, heads, kv_heads, d, causal, 0.3);
      want.insert(want.end(), part.begin(), part.end());
    }
    ExpectClose(got, want);
  }
  Tensor out = Out({batch * len, heads * d});
  EXPECT_FALSE(backend_->Attention(q, k, v, 2, heads, kv_heads, false, 1.f, &out).ok());
  EXPECT_FALSE(backend_->Attention(q, k, v, batch, heads, 4, false, 1.f, &out).ok());
}

TEST_P(OpsTest, PagedAttentionMatchesDenseOverCachedPlusNew) {
  KvCacheShape shape;
  shape.num_layers = 2;
  shape.num_blocks = 20;
  shape.block_size = 4;
  shape.num_kv_heads = 2;
  shape.head_dim = 10;
  PagedKvCache cache(shape);
  const int heads = 4, layer = 1;
  const int64_t kv_width = shape.num_kv_heads * shape.head_dim;
  // (num_cached, num_new): a decode step, a chunked prefill, a fresh prefill.
  struct Seq {
    int64_t cached, fresh;
    std::vector<int32_t> blocks;
  };
  std::vector<Seq> seqs = {{9, 1, {7, 2, 19}}, {5, 6, {3, 11, 0, 16}}, {0, 7, {5, 9}}};
  int64_t total_new = 0;
  for (auto& s : seqs) total_new += s.fresh;
  Tensor q = Random({total_new, heads * shape.head_dim}, 21, 2.0f);
  Vec vq = Read(q), want;
  std::vector<PagedSequence> paged;
  int64_t row = 0;
  uint32_t seed = 100;
  for (auto& s : seqs) {
    const int64_t n = s.cached + s.fresh;
    Tensor k = Random({n, kv_width}, seed++, 2.0f), v = Random({n, kv_width}, seed++);
    std::vector<int32_t> slots(n);
    for (int64_t t = 0; t < n; ++t) {
      slots[t] = s.blocks[t / shape.block_size] * shape.block_size + t % shape.block_size;
    }
    ASSERT_TRUE(backend_->WriteKvCache(k, v, slots, layer, &cache).ok());
    Vec sq(vq.begin() + row * heads * shape.head_dim,
           vq.begin() + (row + s.fresh) * heads * shape.head_dim);
    Vec part = ref::Attention(sq, Read(k), Read(v), s.fresh, n, heads, shape.num_kv_heads,
                              shape.head_dim, true, 0.2);
    want.insert(want.end(), part.begin(), part.end());
    paged.push_back({row, s.fresh, s.cached, s.blocks});
    row += s.fresh;
  }
  Tensor out = Out({total_new, heads * shape.head_dim});
  ASSERT_TRUE(backend_->PagedAttention(q, cache, layer, paged, heads, 0.2f, &out).ok());
  ExpectClose(Read(out), want);

  // A block table too short for cached + new tokens, and a block id outside the cache.
  std::vector<int32_t> short_table = {7, 2};
  std::vector<PagedSequence> bad = {{0, 1, 9, short_table}};
  EXPECT_EQ(backend_->PagedAttention(q, cache, layer, bad, heads, 0.2f, &out).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> wild_table = {7, 20};
  bad = {{0, 1, 4, wild_table}};
  EXPECT_FALSE(backend_->PagedAttention(q, cache, layer, bad, heads, 0.2f, &out).ok());
  Tensor k1 = Random({1, kv_width}, 1), v1 = Random({1, kv_width}, 2);
  std::vector<int32_t> bad_slot = {80};
  EXPECT_FALSE(backend_->WriteKvCache(k1, v1, bad_slot, layer, &cache).ok());
}

TEST_P(OpsTest, ArgmaxFirstMaximum) {
  Tensor x = Make({3, 5}, {0, 3, 1, 3, 2, -5, -4, -9, -4, -7, 1, 1, 1, 1, 8});
  std::vector<int32_t> ids;
  ASSERT_TRUE(backend_->Argmax(x, &ids).ok());
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 1, 4}));
}

// The CPU thread pool runs every index exactly once, also for nested and concurrent loops.
TEST(CpuParallelForTest, EveryIndexOnceNestedAndConcurrent) {
  auto run = [](int64_t n) {
    std::vector<std::atomic<int>> hits(n);
    cpu::ParallelFor(n, 1 << 20, [&](int64_t i) {
      cpu::ParallelFor(3, 1 << 20, [&](int64_t) { hits[i].fetch_add(1); });
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 3);
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) callers.emplace_back([&] { for (int r = 0; r < 20; ++r) run(37); });
  for (auto& c : callers) c.join();
  EXPECT_GE(cpu::NumThreads(), 1);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OpsTest, ::testing::ValuesIn(AvailableBackends()));

}  // namespace
}  // namespace glm4v
