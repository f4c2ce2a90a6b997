// CudaBackend beyond what //kernels:ops_test covers per op: the dtype combinations of the bf16
// fast path (uploads, Linear, gathers, conversions), paged attention straight from a device
// bf16 / f32 cache against the double-precision oracle, and RunCaptured (eager warm-up,
// capture, replays with new index contents; what a captured step may not do).
// Skips without a CUDA device.
#include "kernels/cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/dtype.h"
#include "common/status_macros.h"
#include "common/tensor.h"
#include "kernels/cuda/device_info.h"
#include "kernels/testing/op_reference.h"
#include "model/kv_cache.h"

namespace glm4v::cuda {
namespace {

namespace ref = ::glm4v::reference;
using ref::Vec;

// Rounds every value to bf16 (so that storing it as bf16 is exact).
std::vector<float> RoundedBF16(std::vector<float> v) {
  for (float& x : v) x = ::glm4v::BF16ToF32(::glm4v::F32ToBF16(x));
  return v;
}

Vec Slice(const Vec& v, int64_t begin, int64_t end) {
  return Vec(v.begin() + begin, v.begin() + end);
}

void ExpectClose(const Vec& got, const Vec& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(ref::MaxAbsDiff(got, want), rel * std::max(ref::MaxAbs(want), 1e-30));
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << NoDeviceReason();
    absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(0);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }

  Tensor Up(const std::vector<float>& values, Shape shape, DType storage) {
    absl::StatusOr<Tensor> t = backend_->Upload(Tensor::FromF32(std::move(shape), values), storage);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
  Tensor UpI32(const std::vector<int32_t>& values, Shape shape) {
    absl::StatusOr<Tensor> t =
        backend_->Upload(Tensor::FromI32(std::move(shape), values), DType::kI32);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
  Vec Read(const Tensor& t) {
    absl::StatusOr<Tensor> h = backend_->Download(t);
    EXPECT_TRUE(h.ok()) << h.status();
    if (!h.ok()) return {};
    EXPECT_EQ(h->dtype(), DType::kF32);
    return ref::ToDouble(*h);
  }
  std::vector<int32_t> ReadI32(const Tensor& t) {
    absl::StatusOr<Tensor> h = backend_->Download(t);
    EXPECT_TRUE(h.ok()) << h.status();
    if (!h.ok()) return {};
    EXPECT_EQ(h->dtype(), DType::kI32);
    return std::vector<int32_t>(h->data<int32_t>(), h->data<int32_t>() + h->numel());
  }

  std::unique_ptr<CudaBackend> backend_;
};

TEST_F(CudaBackendTest, UploadDownloadDtypes) {
  EXPECT_EQ(backend_->activation_dtype(), DType::kBF16);
  EXPECT_TRUE(backend_->captures_steps());
  const std::vector<float> values = ref::RandomFloats(37, 1, 3.f);
  const std::vector<float> rounded = RoundedBF16(values);

  Tensor f32 = Up(values, {37}, DType::kF32);
  EXPECT_EQ(f32.dtype(), DType::kF32);
  EXPECT_EQ(f32.device(), Device::kCuda);
  EXPECT_EQ(Read(f32), ref::ToDouble(values));

  Tensor bf = Up(values, {37}, DType::kBF16);
  EXPECT_EQ(bf.dtype(), DType::kBF16);
  EXPECT_EQ(Read(bf), ref::ToDouble(rounded));

  // A bf16 host tensor goes up bit for bit.
  Tensor host_bf16 = Tensor::Empty(DType::kBF16, {37});
  for (int i = 0; i < 37; ++i) host_bf16.data<uint16_t>()[i] = ::glm4v::F32ToBF16(values[i]);
  absl::StatusOr<Tensor> bf2 = backend_->Upload(host_bf16, DType::kBF16);
  ASSERT_TRUE(bf2.ok()) << bf2.status();
  EXPECT_EQ(Read(*bf2), ref::ToDouble(rounded));
  absl::StatusOr<Tensor> widened = backend_->Upload(host_bf16, DType::kF32);
  ASSERT_TRUE(widened.ok()) << widened.status();
  EXPECT_EQ(widened->dtype(), DType::kF32);
  EXPECT_EQ(Read(*widened), ref::ToDouble(rounded));

  const std::vector<int32_t> ids = {5, -1, 7, 1 << 30};
  Tensor i32 = UpI32(ids, {4});
  EXPECT_EQ(ReadI32(i32), ids);
  EXPECT_EQ(backend_->Upload(Tensor::FromI32({4}, ids), DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);

  // WriteIndices keeps the address; ZeroFill clears.
  const void* address = i32.raw_data();
  ASSERT_TRUE(backend_->WriteIndices({9, 8}, &i32, 1).ok());
  EXPECT_EQ(i32.raw_data(), address);
  EXPECT_EQ(ReadI32(i32), (std::vector<int32_t>{5, 9, 8, 1 << 30}));
  ASSERT_TRUE(backend_->ZeroFill(&i32).ok());
  EXPECT_EQ(ReadI32(i32), (std::vector<int32_t>{0, 0, 0, 0}));
  ASSERT_TRUE(backend_->ZeroFill(&bf).ok());
  EXPECT_EQ(Read(bf), Vec(37, 0.0));
  EXPECT_TRUE(backend_->Synchronize().ok());
}

TEST_F(CudaBackendTest, LinearDtypeCombinations) {
  const int64_t m = 5, n = 40, k = 72;
  const auto x = RoundedBF16(ref::RandomFloats(m * k, 2));
  const auto w = RoundedBF16(ref::RandomFloats(n * k, 3));
  const auto b = RoundedBF16(ref::RandomFloats(n, 4));
  const auto y0 = RoundedBF16(ref::RandomFloats(m * n, 5));
  const Vec xw = ref::Linear(ref::ToDouble(x), ref::ToDouble(w), ref::ToDouble(b), m, n, k);
  Vec xw_acc = xw;
  for (size_t i = 0; i < xw_acc.size(); ++i) xw_acc[i] += y0[i];
  struct Combo {
    DType x, w, y;
    double tol;
  };
  for (const Combo& c : {Combo{DType::kF32, DType::kF32, DType::kF32, 1e-5},
                         Combo{DType::kBF16, DType::kBF16, DType::kBF16, 1e-2},
                         Combo{DType::kBF16, DType::kBF16, DType::kF32, 1e-5},
                         Combo{DType::kF32, DType::kBF16, DType::kF32, 1e-5}}) {
    SCOPED_TRACE(testing::Message() << DTypeName(c.x) << " x " << DTypeName(c.w) << " -> "
                                    << DTypeName(c.y));
    Tensor dx = Up(x, {m, k}, c.x), dw = Up(w, {n, k}, c.w), db = Up(b, {n}, c.y);
    Tensor y = Up(y0, {m, n}, c.y);
    ASSERT_TRUE(backend_->Linear(dx, dw, &db, &y).ok());
    ExpectClose(Read(y), xw, c.tol);
    Tensor acc = Up(y0, {m, n}, c.y);
    ASSERT_TRUE(backend_->Linear(dx, dw, &db, &acc, /*accumulate=*/true).ok());
    ExpectClose(Read(acc), xw_acc, c.tol);
  }
  // bf16 activations with f32 weights: not a combination the backend offers.
  Tensor dx = Up(x, {m, k}, DType::kBF16), dw = Up(w, {n, k}, DType::kF32);
  Tensor y = backend_->Empty(DType::kBF16, {m, n});
  EXPECT_EQ(backend_->Linear(dx, dw, nullptr, &y).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(CudaBackendTest, GatherAndCopyRowsConvert) {
  const int64_t rows = 9, cols = 24;
  const auto table = RoundedBF16(ref::RandomFloats(rows * cols, 6));
  const std::vector<int32_t> ids = {3, 0, 8, 3};
  Vec want;
  for (int32_t id : ids) {
    for (int64_t c = 0; c < cols; ++c) want.push_back(table[id * cols + c]);
  }
  Tensor dids = UpI32(ids, {4});
  for (DType table_dtype : {DType::kF32, DType::kBF16}) {
    for (DType out_dtype : {DType::kF32, DType::kBF16}) {
      Tensor t = Up(table, {rows, cols}, table_dtype);
      Tensor out = backend_->Empty(out_dtype, {4, cols});
      ASSERT_TRUE(backend_->GatherRows(t, dids, &out).ok());
      EXPECT_EQ(Read(out), want);  // bf16-representable values: exact either way
    }
  }
  Tensor src = Up(table, {rows, cols}, DType::kF32);
  Tensor mid = backend_->Empty(DType::kBF16, {3, cols});
  Tensor back = backend_->Empty(DType::kF32, {3, cols});
  ASSERT_TRUE(backend_->CopyRows(src, 2, 3, &mid, 0).ok());
  ASSERT_TRUE(backend_->CopyRows(mid, 0, 3, &back, 0).ok());
  EXPECT_EQ(Read(back), Slice(ref::ToDouble(table), 2 * cols, 5 * cols));
}

TEST_F(CudaBackendTest, ContiguousAttentionBF16) {
  for (int d : {112, 16}) {  // tensor cores / the fp32 generic kernel
    const int heads = 4, kv_heads = 2, len = 37, batch = 2;
    const int64_t rows = int64_t{batch} * len, qw = heads * d, kw = kv_heads * d;
    const auto q = RoundedBF16(ref::RandomFloats(rows * qw, 7, 2.f));
    const auto k = RoundedBF16(ref::RandomFloats(rows * kw, 8, 2.f));
    const auto v = RoundedBF16(ref::RandomFloats(rows * kw, 9));
    for (bool causal : {false, true}) {
      SCOPED_TRACE(testing::Message() << "head_dim " << d << " causal " << causal);
      Tensor dq = Up(q, {rows, qw}, DType::kBF16), dk = Up(k, {rows, kw}, DType::kBF16);
      Tensor dv = Up(v, {rows, kw}, DType::kBF16);
      Tensor out = backend_->Empty(DType::kBF16, {rows, qw});
      const float scale = 1.f / std::sqrt(static_cast<float>(d));
      ASSERT_TRUE(
          backend_->Attention(dq, dk, dv, batch, heads, kv_heads, causal, scale, &out).ok());
      const Vec got = Read(out);
      for (int b = 0; b < batch; ++b) {
        const Vec want = ref::Attention(
            Slice(ref::ToDouble(q), b * len * qw, (b + 1) * len * qw),
            Slice(ref::ToDouble(k), b * len * kw, (b + 1) * len * kw),
            Slice(ref::ToDouble(v), b * len * kw, (b + 1) * len * kw), len, len, heads,
            kv_heads, d, causal, scale);
        ExpectClose(Slice(got, b * len * qw, (b + 1) * len * qw), want, 2e-2);
      }
    }
  }
}

// Sequences of a paged batch for the tests below (a padding row with num_queries = 0 too).
struct SeqSpec {
  int num_q, num_cached;
};

struct PagedCase {
  DType act, cache;
  int head_dim;
};

class CudaPagedAttentionTest : public CudaBackendTest,
                               public ::testing::WithParamInterface<PagedCase> {};

// Writes every token's K/V with WriteKvCache (slot tensor, one skipped row), then runs paged
// attention on the device cache and compares each sequence with the oracle over its tokens.
TEST_P(CudaPagedAttentionTest, MatchesReference) {
  const PagedCase pc = GetParam();
  const int d = pc.head_dim, heads = pc.head_dim == 128 ? 32 : 4, kv_heads = 2;
  const int block = 16, num_blocks = 320;
  const int64_t qw = int64_t{heads} * d, kw = int64_t{kv_heads} * d;
  const std::vector<SeqSpec> specs = {{1, 0}, {0, 0}, {1, 999}, {5, 60}, {1, 2000}, {3, 17}};
  KvCacheShape shape;
  shape.num_layers = 2;
  shape.num_blocks = num_blocks;
  shape.block_size = block;
  shape.num_kv_heads = kv_heads;
  shape.head_dim = d;
  absl::StatusOr<PagedKvCache> cache = backend_->AllocateKvCache(shape, pc.cache);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->dtype(), pc.cache);
  EXPECT_EQ(cache->device(), Device::kCuda);

  // Block tables: a scrambled permutation; every token's K/V written in one call (+ a row with
  // slot -1 that must not land anywhere).
  std::vector<std::vector<int32_t>> tables(specs.size());
  std::vector<int32_t> slots;
  int next_block = 0, q_rows = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int len = specs[i].num_q + specs[i].num_cached;
    for (int b = 0; b < (len + block - 1) / block; ++b) {
      tables[i].push_back((next_block++ * 97 + 13) % num_blocks);
    }
    for (int t = 0; t < len; ++t) slots.push_back(tables[i][t / block] * block + t % block);
    q_rows += specs[i].num_q;
  }
  ASSERT_LE(next_block, num_blocks);
  slots.push_back(-1);
  const int64_t tokens = static_cast<int64_t>(slots.size());
  const auto k = RoundedBF16(ref::RandomFloats(tokens * kw, 10, 2.f));
  const auto v = RoundedBF16(ref::RandomFloats(tokens * kw, 11));
  Tensor dk = Up(k, {tokens, kw}, pc.act), dv = Up(v, {tokens, kw}, pc.act);
  Tensor dslots = UpI32(slots, {tokens});
  ASSERT_TRUE(backend_->WriteKvCache(dk, dv, dslots, /*layer=*/1, &*cache).ok());

  // One extra q/out row that no sequence owns (the padding sequence points at it).
  const int64_t rows = q_rows + 1;
  const auto q = RoundedBF16(ref::RandomFloats(rows * qw, 12, 2.f));
  Tensor dq = Up(q, {rows, qw}, pc.act);
  Tensor out = backend_->Empty(pc.act, {rows, qw});
  ASSERT_TRUE(backend_->ZeroFill(&out).ok());
  std::vector<PagedSequence> seqs;
  int q_begin = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    PagedSequence s;
    s.query_begin = specs[i].num_q == 0 ? q_rows : q_begin;
    s.num_queries = specs[i].num_q;
    s.num_cached = specs[i].num_cached;
    s.block_table = tables[i];
    seqs.push_back(s);
    q_begin += specs[i].num_q;
  }
  const PagedBatchHost host = PagedBatchHost::From(seqs);
  PagedBatch batch;
  batch.sequences = UpI32(host.sequences, {host.num_sequences(), 4});
  batch.block_tables = UpI32(host.block_tables, {static_cast<int64_t>(host.block_tables.size())});
  batch.max_num_queries = host.max_num_queries;
  batch.max_kv_len = host.max_kv_len;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  ASSERT_TRUE(backend_->PagedAttention(dq, *cache, 1, batch, heads, scale, &out).ok());
  const Vec got = Read(out);

  int64_t token = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const int len = specs[i].num_q + specs[i].num_cached;
    const Vec ks = Slice(ref::ToDouble(k), token * kw, (token + len) * kw);
    const Vec vs = Slice(ref::ToDouble(v), token * kw, (token + len) * kw);
    token += len;
    if (specs[i].num_q == 0) continue;
    const int64_t b = seqs[i].query_begin, e = b + specs[i].num_q;
    const Vec want = ref::Attention(Slice(ref::ToDouble(q), b * qw, e * qw), ks, vs,
                                    specs[i].num_q, len, heads, kv_heads, d, true, scale);
    SCOPED_TRACE(testing::Message() << "sequence " << i);
    ExpectClose(Slice(got, b * qw, e * qw), want, 2e-2);
  }
  EXPECT_EQ(Slice(got, q_rows * qw, rows * qw), Vec(qw, 0.0)) << "padding row written";
  // Layer 0 stayed zero (the cache is zero-filled and only layer 1 was written).
  EXPECT_EQ(ref::MaxAbs(Read(cache->key_tensor(0))), 0.0);
}

INSTANTIATE_TEST_SUITE_P(
    DtypesAndHeadDims, CudaPagedAttentionTest,
    ::testing::Values(PagedCase{DType::kBF16, DType::kBF16, 128},  // tensor cores, split-K
                      PagedCase{DType::kF32, DType::kBF16, 128},   // f32 q through bf16
                      PagedCase{DType::kBF16, DType::kBF16, 16},   // generic, bf16 cache
                      PagedCase{DType::kF32, DType::kF32, 64},     // generic, f32 cache
                      PagedCase{DType::kBF16, DType::kF32, 64}),   // bf16 q, f32 cache
    [](const ::testing::TestParamInfo<PagedCase>& info) {
      return absl::StrCat(std::string(DTypeName(info.param.act)), "_",
                          std::string(DTypeName(info.param.cache)), "_cache_d",
                          info.param.head_dim);
    });

// A small embedding + norm + Linear step over index buffers filled with WriteIndices: run 4
// times with different ids (eager warm-up, capture, replays) and compare with eager results.
TEST_F(CudaBackendTest, RunCapturedReplaysWithNewIndices) {
  const int64_t vocab = 50, hidden = 64, out_dim = 48, batch = 4;
  Tensor table = Up(RoundedBF16(ref::RandomFloats(vocab * hidden, 13)), {vocab, hidden},
                    DType::kBF16);
  Tensor norm_w = Up(RoundedBF16(ref::RandomFloats(hidden, 14)), {hidden}, DType::kBF16);
  Tensor w = Up(RoundedBF16(ref::RandomFloats(out_dim * hidden, 15)), {out_dim, hidden},
                DType::kBF16);
  Tensor bias = Up(RoundedBF16(ref::RandomFloats(out_dim, 16)), {out_dim}, DType::kF32);
  Tensor ids = backend_->Empty(DType::kI32, {batch});
  Tensor logits = backend_->Empty(DType::kF32, {batch, out_dim});
  ASSERT_TRUE(ids.defined() && logits.defined());
  int step_calls = 0;
  auto forward = [&](const Tensor& id_tensor, Tensor* y) -> absl::Status {
    Tensor h = backend_->Empty(DType::kBF16, {batch, hidden});
    RETURN_IF_ERROR(backend_->GatherRows(table, id_tensor, &h));
    Tensor n = backend_->Empty(DType::kBF16, {batch, hidden});
    RETURN_IF_ERROR(backend_->RmsNorm(h, norm_w, 1e-5f, &n));
    return backend_->Linear(n, w, &bias, y);
  };
  const std::vector<std::vector<int32_t>> inputs = {
      {1, 2, 3, 4}, {49, 0, 7, 7}, {10, 20, 30, 40}, {5, 5, 5, 5}};
  for (size_t call = 0; call < inputs.size(); ++call) {
    SCOPED_TRACE(testing::Message() << "call " << call);
    ASSERT_TRUE(backend_->WriteIndices(inputs[call], &ids).ok());
    absl::Status s = backend_->RunCaptured(/*key=*/7, [&]() -> absl::Status {
      ++step_calls;
      return forward(ids, &logits);
    });
    ASSERT_TRUE(s.ok()) << s;
    const Vec got = Read(logits);
    Tensor eager = backend_->Empty(DType::kF32, {batch, out_dim});
    ASSERT_TRUE(forward(UpI32(inputs[call], {batch}), &eager).ok());
    ExpectClose(got, Read(eager), 1e-5);  // same kernels and inputs (new ids every call)
  }
  EXPECT_EQ(step_calls, 2);  // eager warm-up and capture; then replays
  EXPECT_EQ(backend_->num_captured(), 1u);
  EXPECT_GT(backend_->captured_scratch_bytes(), 0u);
  backend_->ClearCaptured();
  EXPECT_EQ(backend_->num_captured(), 0u);
  EXPECT_EQ(backend_->captured_scratch_bytes(), 0u);
}

// A decode step (KV write + paged attention over index tensors) captured once and replayed
// while the sequences grow: every step matches the oracle over all tokens written so far.
TEST_F(CudaBackendTest, CapturedDecodeStepOverGrowingSequences) {
  const int heads = 32, kv_heads = 2, d = 128, block = 16, num_blocks = 8, max_blocks = 4;
  const int64_t qw = int64_t{heads} * d, kw = int64_t{kv_heads} * d;
  const int num_seqs = 2, steps = 5, prompt = 14;  // crosses a block boundary at 16
  KvCacheShape shape{1, num_blocks, block, kv_heads, d};
  absl::StatusOr<PagedKvCache> cache = backend_->AllocateKvCache(shape, DType::kBF16);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const std::vector<std::vector<int32_t>> tables = {{5, 2, 7, 0}, {1, 6, 3, 4}};

  // The prompt tokens, written eagerly.
  const int64_t total = int64_t{num_seqs} * (prompt + steps);
  const auto k = RoundedBF16(ref::RandomFloats(total * kw, 20, 2.f));
  const auto v = RoundedBF16(ref::RandomFloats(total * kw, 21));
  const auto q = RoundedBF16(ref::RandomFloats(int64_t{num_seqs} * steps * qw, 22, 2.f));
  auto token_row = [&](int s, int t) { return int64_t{s} * (prompt + steps) + t; };
  auto slot = [&](int s, int t) { return tables[s][t / block] * block + t % block; };
  Tensor all_k = Up(k, {total, kw}, DType::kBF16), all_v = Up(v, {total, kw}, DType::kBF16);
  Tensor all_q = Up(q, {int64_t{num_seqs} * steps, qw}, DType::kBF16);
  {
    std::vector<int32_t> prompt_slots(total, -1);  // -1: not a prompt token (skipped)
    for (int s = 0; s < num_seqs; ++s) {
      for (int t = 0; t < prompt; ++t) prompt_slots[token_row(s, t)] = slot(s, t);
    }
    ASSERT_TRUE(
        backend_->WriteKvCache(all_k, all_v, UpI32(prompt_slots, {total}), 0, &*cache).ok());
  }

  // Fixed-address step inputs and outputs.
  Tensor step_q = backend_->Empty(DType::kBF16, {num_seqs, qw});
  Tensor step_k = backend_->Empty(DType::kBF16, {num_seqs, kw});
  Tensor step_v = backend_->Empty(DType::kBF16, {num_seqs, kw});
  Tensor out = backend_->Empty(DType::kBF16, {num_seqs, qw});
  Tensor slots = backend_->Empty(DType::kI32, {num_seqs});
  PagedBatch batch;
  batch.sequences = backend_->Empty(DType::kI32, {num_seqs, 4});
  batch.block_tables = backend_->Empty(DType::kI32, {num_seqs * max_blocks});
  batch.max_num_queries = 1;
  batch.max_kv_len = max_blocks * block;  // a bound, fixed per key
  std::vector<int32_t> flat_tables;
  for (const auto& t : tables) flat_tables.insert(flat_tables.end(), t.begin(), t.end());
  ASSERT_TRUE(backend_->WriteIndices(flat_tables, &batch.block_tables).ok());
  const float scale = 1.f / std::sqrt(128.f);
  int step_calls = 0;
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    const int t = prompt + step;  // the new token's position
    std::vector<int32_t> seq_rows, step_slots;
    for (int s = 0; s < num_seqs; ++s) {
      seq_rows.insert(seq_rows.end(), {s, 1, t + 1, s * max_blocks});
      step_slots.push_back(slot(s, t));
      ASSERT_TRUE(backend_->CopyRows(all_k, token_row(s, t), 1, &step_k, s).ok());
      ASSERT_TRUE(backend_->CopyRows(all_v, token_row(s, t), 1, &step_v, s).ok());
      ASSERT_TRUE(backend_->CopyRows(all_q, int64_t{s} * steps + step, 1, &step_q, s).ok());
    }
    ASSERT_TRUE(backend_->WriteIndices(seq_rows, &batch.sequences).ok());
    ASSERT_TRUE(backend_->WriteIndices(step_slots, &slots).ok());
    absl::Status st = backend_->RunCaptured(1, [&]() -> absl::Status {
      ++step_calls;
      RETURN_IF_ERROR(backend_->WriteKvCache(step_k, step_v, slots, 0, &*cache));
      return backend_->PagedAttention(step_q, *cache, 0, batch, heads, scale, &out);
    });
    ASSERT_TRUE(st.ok()) << st;
    const Vec got = Read(out);
    for (int s = 0; s < num_seqs; ++s) {
      const Vec ks = Slice(ref::ToDouble(k), token_row(s, 0) * kw, (token_row(s, t) + 1) * kw);
      const Vec vs = Slice(ref::ToDouble(v), token_row(s, 0) * kw, (token_row(s, t) + 1) * kw);
      const int64_t qr = int64_t{s} * steps + step;
      const Vec want = ref::Attention(Slice(ref::ToDouble(q), qr * qw, (qr + 1) * qw), ks, vs, 1,
                                      t + 1, heads, kv_heads, d, true, scale);
      ExpectClose(Slice(got, s * qw, (s + 1) * qw), want, 2e-2);
    }
  }
  EXPECT_EQ(step_calls, 2);
}

TEST_F(CudaBackendTest, CapturedStepMayNotTouchTheHost) {
  Tensor x = Up({1.f, 2.f, 3.f, 4.f}, {2, 2}, DType::kBF16);
  Tensor table = Up({1.f, 2.f, 3.f, 4.f}, {2, 2}, DType::kBF16);
  Tensor out = backend_->Empty(DType::kBF16, {2, 2});
  // Synchronize, Download, host-span forms (they upload), WriteIndices, Argmax: all refused,
  // already in the eager first call.
  absl::Status s = backend_->RunCaptured(1, [&] { return backend_->Synchronize(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  s = backend_->RunCaptured(2, [&] { return backend_->Download(x).status(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  const std::vector<int32_t> rows = {1, 0};
  s = backend_->RunCaptured(3, [&] { return backend_->GatherRows(table, rows, &out); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  Tensor ids = backend_->Empty(DType::kI32, {2});
  s = backend_->RunCaptured(4, [&] { return backend_->WriteIndices(rows, &ids); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  std::vector<int32_t> argmax;
  s = backend_->RunCaptured(5, [&] { return backend_->Argmax(x, &argmax); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // A step that swallows the error still fails.
  s = backend_->RunCaptured(6, [&] {
    backend_->Synchronize().IgnoreError();
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // Not reentrant.
  s = backend_->RunCaptured(8, [&] {
    return backend_->RunCaptured(9, [] { return absl::OkStatus(); });
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(backend_->num_captured(), 0u);
  // The backend is still usable afterwards.
  EXPECT_TRUE(backend_->Synchronize().ok());
  EXPECT_EQ(Read(x), (Vec{1, 2, 3, 4}));
}

// The capture must not run cuBLASLt's heuristic: a GEMM shape the warm-up did not see fails the
// capture (and the key is measured again on the next call).
TEST_F(CudaBackendTest, CaptureNeedsTheWarmUpsGemmPlans) {
  const int64_t k = 32, n = 16;
  Tensor w = Up(RoundedBF16(ref::RandomFloats(n * k, 30)), {n, k}, DType::kBF16);
  Tensor x = Up(RoundedBF16(ref::RandomFloats(3 * k, 31)), {3, k}, DType::kBF16);
  Tensor y = backend_->Empty(DType::kBF16, {3, n});
  int64_t m = 2;
  auto step = [&]() -> absl::Status {
    Tensor xs = x.SliceRows(0, m), ys = y.SliceRows(0, m);
    return backend_->Linear(xs, w, nullptr, &ys);
  };
  ASSERT_TRUE(backend_->RunCaptured(11, step).ok());  // warm-up with m = 2
  m = 3;  // a shape never planned (this key's contract is broken on purpose)
  absl::Status s = backend_->RunCaptured(11, step);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(backend_->num_captured(), 0u);
  ASSERT_TRUE(backend_->RunCaptured(11, step).ok());  // measured again (plans m = 3)
  ASSERT_TRUE(backend_->RunCaptured(11, step).ok());  // captured
  EXPECT_EQ(backend_->num_captured(), 1u);
  EXPECT_TRUE(backend_->Synchronize().ok());
}

}  // namespace
}  // namespace glm4v::cuda
