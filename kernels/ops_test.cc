// Every Backend op against the naive double-precision oracle (kernels/testing/op_reference.h),
// on random inputs with odd sizes and with GLM-4V's real sizes, once per backend linked into
// this binary (AvailableBackends). A backend whose device is missing (UNAVAILABLE) skips.
//
// OpsTest runs the ops twice per backend: with f32 activations (every backend), and with bf16
// activations on backends whose activation_dtype() is bf16 (CUDA; skipped elsewhere). Inputs
// are uploaded in the activation dtype and the oracle runs on what was stored (Download), so
// bf16 input rounding is not an error; what remains is the op's own rounding (Tolerances).
// MemoryTest covers uploads, index buffers, KV cache allocation and argument validation.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "kernels/cpu/matmul_quantized_vnni.h"
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
// bf16 activations (any backend): every output element is rounded to bf16 (8 bits of
// mantissa: relative error <= 2^-9 of itself, so <= 2^-9 of max |want|), after f32 math on
// exact bf16 inputs. 8e-3 = 4x that bound leaves room for one more rounded intermediate (the
// sum before Scale, a GEMM split-k partial, a norm's normalized value before the weight).
// Attention also rounds q.k operands and probabilities on tensor cores, as kCudaTolerances.
constexpr Tolerances kBf16Tolerances = {8e-3, 8e-3, 8e-3, 8e-3, 2e-2, 2e-2};
// Linear with bf16 x and weight into an f32 y (the logits): f32 accumulation only.
constexpr double kBf16ToF32LinearTolerance = 1e-4;

// bf16-rounded copies of values (what a bf16 tensor of them stores).
Vec RoundToBf16(const Vec& v) {
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = BF16ToF32(F32ToBF16(static_cast<float>(v[i])));
  return out;
}

// a + b, elementwise (what Linear with `accumulate` adds onto y).
Vec Plus(Vec a, const Vec& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

// Helpers shared by the fixtures: tensors on the backend under test, read back as doubles.
class BackendFixture : public ::testing::Test {
 protected:
  // Sets backend_, or skips the test when the backend's device is missing.
  void SetUpBackend(const std::string& name) {
    auto backend = GetBackend(name);
    if (backend.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << name << ": " << backend.status().message();
    }
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *backend;
  }

  // A device tensor holding `values`, stored as `dtype` (the activation dtype by default).
  Tensor Make(Shape shape, const std::vector<float>& values) { return Make(shape, values, act_); }
  Tensor Make(Shape shape, const std::vector<float>& values, DType dtype) {
    auto t = backend_->Upload(Tensor::FromF32(std::move(shape), values), dtype);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
  Tensor Random(Shape shape, uint32_t seed, float scale = 1.0f) {
    return Random(shape, seed, scale, act_);
  }
  Tensor Random(Shape shape, uint32_t seed, float scale, DType dtype) {
    return Make(shape, ref::RandomFloats(NumElements(shape), seed, scale), dtype);
  }
  Tensor Out(Shape shape) { return backend_->Empty(act_, std::move(shape)); }
  // An i32 index tensor on the device.
  Tensor Indices(const std::vector<int32_t>& values) {
    auto t = backend_->Upload(
        Tensor::FromI32({static_cast<int64_t>(values.size())}, values), DType::kI32);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Tensor();
  }
  Vec Read(const Tensor& t) {
    auto host = backend_->Download(t);
    EXPECT_TRUE(host.ok()) << host.status();
    return host.ok() ? ref::ToDouble(*host) : Vec();
  }
  std::vector<int32_t> ReadIndices(const Tensor& t) {
    auto host = backend_->Download(t);
    EXPECT_TRUE(host.ok()) << host.status();
    if (!host.ok()) return {};
    EXPECT_EQ(host->dtype(), DType::kI32);
    const int32_t* p = host->data<int32_t>();
    return std::vector<int32_t>(p, p + host->numel());
  }
  // max |got - want| <= rel * max |want|.
  void ExpectClose(const Vec& got, const Vec& want, double rel) {
    ASSERT_EQ(got.size(), want.size());
    const double scale = std::max(ref::MaxAbs(want), 1e-30);
    EXPECT_LE(ref::MaxAbsDiff(got, want), rel * scale);
  }
  KvCacheShape SmallCacheShape(int block_size, int head_dim) const {
    KvCacheShape shape;
    shape.num_layers = 2;
    shape.num_blocks = 20;
    shape.block_size = block_size;
    shape.num_kv_heads = 2;
    shape.head_dim = head_dim;
    return shape;
  }

  Backend* backend_ = nullptr;
  DType act_ = DType::kF32;  // activation dtype of the tensors the helpers make
};

// Dtype combinations other than "everything in the backend's activation dtype" and "bf16
// storage under f32 activations on an f32 backend" are optional (ops.h: UNIMPLEMENTED for
// combinations a backend lacks): a backend running a test outside its activation dtype may
// answer UNIMPLEMENTED, and the test then skips.
#define ASSERT_OK_OR_SKIP_OPTIONAL(expr)                                                  \
  do {                                                                                    \
    const absl::Status status_ = (expr);                                                  \
    if (status_.code() == absl::StatusCode::kUnimplemented &&                             \
        act_ != backend_->activation_dtype()) {                                           \
      GTEST_SKIP() << backend_->name() << " lacks this dtype combination: " << status_; \
    }                                                                                     \
    ASSERT_TRUE(status_.ok()) << status_;                                                 \
  } while (0)

// Parameter: (backend name, activation dtype).
using OpsParam = std::tuple<std::string, DType>;

class OpsTest : public BackendFixture, public ::testing::WithParamInterface<OpsParam> {
 protected:
  void SetUp() override {
    SetUpBackend(std::get<0>(GetParam()));
    if (IsSkipped() || HasFatalFailure()) return;
    act_ = std::get<1>(GetParam());
    if (act_ == DType::kBF16) {
      if (backend_->activation_dtype() != DType::kBF16) {
        GTEST_SKIP() << backend_->name() << " computes in "
                     << DTypeName(backend_->activation_dtype())
                     << " (bf16 activations run only on backends whose activation dtype is "
                        "bf16)";
      }
      tol_ = kBf16Tolerances;
    } else {
      tol_ = backend_->name() == "cpu" ? kCpuTolerances : kCudaTolerances;
    }
  }

  double AttentionTolerance(int head_dim) const {
    // kernels/cuda/attention.h instantiates these on tensor cores; the CPU has no bf16 path.
    const bool tensor_core = head_dim == 64 || head_dim == 80 || head_dim == 96 ||
                             head_dim == 112 || head_dim == 128;
    return tensor_core ? tol_.bf16_attention : tol_.attention;
  }

  // The activation dtype, then bf16 if that differs: the dtypes weights, tables and the KV
  // cache are tested in (bf16 is how they are stored for serving).
  std::vector<DType> StorageDtypes() const {
    std::vector<DType> dtypes = {act_};
    if (act_ != DType::kBF16) dtypes.push_back(DType::kBF16);
    return dtypes;
  }

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
    if (act_ == DType::kBF16) {
      // The logits: bf16 activations into an f32 y (with an f32 bias, y's dtype).
      Tensor y32 = backend_->Empty(DType::kF32, {d.m, d.n});
      Tensor b32 = Random({d.n}, 3, 1.0f, DType::kF32);
      ASSERT_TRUE(backend_->Linear(x, w, &b32, &y32).ok());
      ExpectClose(Read(y32), ref::Linear(Read(x), Read(w), Read(b32), d.m, d.n, d.k),
                  kBf16ToF32LinearTolerance);
    }
  }
}

// int8 / int4 weights quantized from f32 on the host: the oracle multiplies the dequantized
// matrix (what the quantized weights stand for), odd widths (vector, block and group tails) and
// sizes that take several row blocks and pool chunks.
TEST_P(OpsTest, LinearWithQuantizedWeights) {
  struct Dims {
    int64_t m, n, k;
  };
  for (const bool int8_activations : {false, true}) {
    // The CPU rounds x per block of 128 (int16 for int8 weights, int8 for int4) for products
    // of few rows where it has AVX-512 VNNI (kernels/cpu/matmul_quantized_vnni.h): exact first,
    // then that path, whose error is bounded by half a step of each block's rounding times |w|.
    if (int8_activations && !cpu::Int8ActivationProductsEnabled() &&
        !cpu::Int4ActivationProductsEnabled()) {
      continue;
    }
    cpu::SetInt8ActivationProducts(int8_activations);
    for (const WeightFormat format :
         {WeightFormat::kInt8, WeightFormat::kInt4, WeightFormat::kFp8}) {
      for (const Dims& d : {Dims{1, 13, 19}, Dims{7, 37, 67}, Dims{33, 13, 130},
                            Dims{3, 200, 4096}, Dims{130, 70, 300}, Dims{70, 40, 320}}) {
        Tensor x = Random({d.m, d.k}, 1), b = Random({d.n}, 3);
        const Tensor host = Tensor::FromF32({d.n, d.k}, ref::RandomFloats(d.n * d.k, 2, 1.0f));
        auto quantized = QuantizeLinearWeight(host, format);
        ASSERT_TRUE(quantized.ok()) << quantized.status();
        const Vec vw = ref::ToDouble(DequantizeLinearWeight(*quantized));
        auto w = backend_->UploadLinearWeight(*quantized, act_);
        ASSERT_TRUE(w.ok()) << w.status();
        const Vec vx = Read(x), vb = Read(b);
        Tensor y = Out({d.m, d.n});
        const absl::Status status = backend_->Linear(x, *w, &b, &y);
        if (status.code() == absl::StatusCode::kUnimplemented) {
          cpu::SetInt8ActivationProducts(true);
          GTEST_SKIP() << backend_->name() << " has no kernel for quantized weights yet: "
                       << status;
        }
        ASSERT_TRUE(status.ok()) << status;
        const Vec want = ref::Linear(vx, vw, vb, d.m, d.n, d.k);
        // fp8 never rounds x on the CPU.
        const bool integer_path = format == WeightFormat::kInt8
                                      ? cpu::Int8ActivationProductsEnabled()
                                      : format == WeightFormat::kInt4 &&
                                            cpu::Int4ActivationProductsEnabled();
        const bool rounded = int8_activations && backend_->name() == "cpu" &&
                             d.m <= cpu::kVnniMaxRows && integer_path;
        // CUDA on Hopper runs fp8 weights of products beyond its GEMV rows on the fp8 tensor
        // cores, x rounded to e4m3 per row: each product term within 2^-4 of its magnitude.
        if (backend_->name() != "cpu" && format == WeightFormat::kFp8 && d.m > 64) {
          const Vec got = Read(y);
          for (int64_t i = 0; i < d.m; ++i) {
            for (int64_t j = 0; j < d.n; ++j) {
              double magnitude = std::fabs(vb[j]);
              for (int64_t t = 0; t < d.k; ++t) {
                magnitude += std::fabs(vx[i * d.k + t] * vw[j * d.k + t]);
              }
              ASSERT_NEAR(got[i * d.n + j], want[i * d.n + j], 0.0625 * magnitude + 0.02)
                  << "fp8 m " << d.m << " k " << d.k;
            }
          }
          continue;
        }
        if (!rounded) {
          ExpectClose(Read(y), want, tol_.linear);
          const Vec acc = Plus(ref::Linear(vx, vw, {}, d.m, d.n, d.k), Read(y));
          ASSERT_TRUE(backend_->Linear(x, *w, nullptr, &y, /*accumulate=*/true).ok());
          ExpectClose(Read(y), acc, tol_.linear);
          continue;
        }
        const Vec got = Read(y);
        for (int64_t i = 0; i < d.m; ++i) {
          for (int64_t j = 0; j < d.n; ++j) {
            double bound = 1e-5 * (std::fabs(want[i * d.n + j]) + 1.0);
            for (int64_t t0 = 0; t0 < d.k; t0 += cpu::kActivationBlock) {
              const int64_t t1 = std::min(d.k, t0 + cpu::kActivationBlock);
              double block_max = 0, w_abs = 0;
              for (int64_t t = t0; t < t1; ++t) {
                block_max = std::max(block_max, std::fabs(vx[i * d.k + t]));
                w_abs += std::fabs(vw[j * d.k + t]);
              }
              // int8 weights take x in int16, int4 weights in int8.
              const double levels = format == WeightFormat::kInt8 ? 32767.0 : 127.0;
              bound += 0.5 * block_max / levels * w_abs * 1.0001;
            }
            ASSERT_NEAR(got[i * d.n + j], want[i * d.n + j], bound)
                << WeightFormatName(format) << " m " << d.m << " k " << d.k;
          }
        }
      }
    }
  }
  cpu::SetInt8ActivationProducts(true);
}

TEST_P(OpsTest, LinearRejectsMalformedQuantizedWeights) {
  const Tensor host = Tensor::FromF32({4, 40}, ref::RandomFloats(160, 2, 1.0f));
  auto quantized = QuantizeLinearWeight(host, WeightFormat::kInt4);
  ASSERT_TRUE(quantized.ok());
  auto w = backend_->UploadLinearWeight(*quantized, act_);
  ASSERT_TRUE(w.ok());
  Tensor x = Random({2, 40}, 1), y = Out({2, 4});
  LinearWeight no_zeros = *w;
  no_zeros.zeros = Tensor();
  EXPECT_EQ(backend_->Linear(x, no_zeros, nullptr, &y).code(),
            absl::StatusCode::kInvalidArgument);
  LinearWeight wrong_width = *w;
  wrong_width.in = 41;  // the packed rows no longer match
  EXPECT_EQ(backend_->Linear(x, wrong_width, nullptr, &y).code(),
            absl::StatusCode::kInvalidArgument);
  Tensor x_wide = Random({2, 64}, 1);
  EXPECT_EQ(backend_->Linear(x_wide, *w, nullptr, &y).code(), absl::StatusCode::kInvalidArgument);
  // NaN weights have no scale.
  Tensor nan = Tensor::FromF32({1, 2}, {1.0f, std::nanf("")});
  EXPECT_EQ(QuantizeLinearWeight(nan, WeightFormat::kInt8).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(OpsTest, LinearRejectsMismatchedShapes) {
  Tensor x = Random({3, 5}, 1), w = Random({4, 6}, 2), y = Out({3, 4});
  EXPECT_EQ(backend_->Linear(x, w, nullptr, &y).code(), absl::StatusCode::kInvalidArgument);
  Tensor w2 = Random({4, 5}, 2), y2 = Out({3, 5});
  EXPECT_EQ(backend_->Linear(x, w2, nullptr, &y2).code(), absl::StatusCode::kInvalidArgument);
  Tensor bias = Random({5}, 3);
  EXPECT_EQ(backend_->Linear(x, w2, &bias, &y).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(OpsTest, LinearAccumulatesIntoY) {
  struct Dims {
    int64_t m, n, k;
  };
  for (const Dims& d : {Dims{1, 13, 19}, Dims{7, 13, 19}, Dims{130, 37, 67}}) {
    Tensor x = Random({d.m, d.k}, 1), w = Random({d.n, d.k}, 2), b = Random({d.n}, 3);
    Tensor y = Random({d.m, d.n}, 4);
    Vec want = Plus(ref::Linear(Read(x), Read(w), Read(b), d.m, d.n, d.k), Read(y));
    ASSERT_TRUE(backend_->Linear(x, w, &b, &y, /*accumulate=*/true).ok());
    ExpectClose(Read(y), want, tol_.linear);

    want = Plus(ref::Linear(Read(x), Read(w), {}, d.m, d.n, d.k), Read(y));
    ASSERT_TRUE(backend_->Linear(x, w, nullptr, &y, /*accumulate=*/true).ok());
    ExpectClose(Read(y), want, tol_.linear);
  }
}

TEST_P(OpsTest, LinearWithBf16Weights) {
  // Weights kept in the checkpoint's bf16 under the activations (the CPU converts them panel by
  // panel: n = 4100 at k = 67 and n = 200 at k = 4096 span several panels). The oracle multiplies
  // the stored, rounded weights.
  struct Dims {
    int64_t m, n, k;
  };
  for (const Dims& d : {Dims{1, 13, 19}, Dims{33, 13, 19}, Dims{5, 4100, 67}, Dims{3, 200, 4096}}) {
    Tensor x = Random({d.m, d.k}, 1), b = Random({d.n}, 3);
    Tensor w = Random({d.n, d.k}, 2, 1.0f, DType::kBF16);
    ASSERT_EQ(w.dtype(), DType::kBF16);
    const Vec vx = Read(x), vw = Read(w), vb = Read(b);
    Tensor y = Out({d.m, d.n});
    ASSERT_OK_OR_SKIP_OPTIONAL(backend_->Linear(x, w, &b, &y));
    ExpectClose(Read(y), ref::Linear(vx, vw, vb, d.m, d.n, d.k), tol_.linear);

    const Vec want = Plus(ref::Linear(vx, vw, {}, d.m, d.n, d.k), Read(y));
    ASSERT_TRUE(backend_->Linear(x, w, nullptr, &y, /*accumulate=*/true).ok());
    ExpectClose(Read(y), want, tol_.linear);
  }
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

TEST_P(OpsTest, GatherRowsFromIndexTensor) {
  // The table in the activation dtype and in bf16 (the embedding as stored in the checkpoint).
  for (DType table_dtype : StorageDtypes()) {
    SCOPED_TRACE(DTypeName(table_dtype));
    Tensor table = Random({6, 11}, 40, 1.0f, table_dtype);
    const Vec vt = Read(table);
    std::vector<int32_t> rows = {5, 0, 5, 3};
    Tensor ids = Indices(rows), out = Out({4, 11});
    ASSERT_OK_OR_SKIP_OPTIONAL(backend_->GatherRows(table, ids, &out));
    Vec got = Read(out);
    for (int i = 0; i < 4; ++i) {
      for (int c = 0; c < 11; ++c) EXPECT_EQ(got[i * 11 + c], vt[rows[i] * 11 + c]);
    }
    // New ids in the same buffer (how a replayed step gets its tokens).
    rows = {1, 1, 2, 4};
    ASSERT_TRUE(backend_->WriteIndices(rows, &ids).ok());
    ASSERT_TRUE(backend_->GatherRows(table, ids, &out).ok());
    got = Read(out);
    for (int i = 0; i < 4; ++i) {
      for (int c = 0; c < 11; ++c) EXPECT_EQ(got[i * 11 + c], vt[rows[i] * 11 + c]);
    }
  }
}

TEST_P(OpsTest, CopyRowsConvertsFromOtherFloatDtype) {
  const DType other = act_ == DType::kF32 ? DType::kBF16 : DType::kF32;
  Tensor src = Random({4, 7}, 41, 1.0f, other);
  Vec vs = Read(src);
  if (act_ == DType::kBF16) vs = RoundToBf16(vs);  // what the bf16 dst can hold
  Tensor dst = Make({3, 7}, std::vector<float>(21, 0.0f));
  ASSERT_OK_OR_SKIP_OPTIONAL(backend_->CopyRows(src, 1, 2, &dst, 1));
  const Vec vd = Read(dst);
  for (int c = 0; c < 7; ++c) {
    EXPECT_EQ(vd[c], 0.0);
    EXPECT_EQ(vd[7 + c], vs[7 + c]);
    EXPECT_EQ(vd[14 + c], vs[14 + c]);
  }
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
  // rotary 6 of 14: a pass-through tail; GLM's 64 of 128 with positions near the 32k limit,
  // and near GLM-4-9B-chat-1M's 1,048,576 (where fp32 angles would be off by ~0.06 rad).
  const std::vector<Case> cases = {
      {3, 14, 6, {0, 1, 5, 5, 1000, 32767}},
      {3, 128, 64, {0, 1, 2, 3, 3, 3, 4, 1000, 31999}},
      {2, 128, 64, {131071, 524287, 999983, 1048574, 1048575}}};
  for (const Case& c : cases) {
    const int64_t rows = static_cast<int64_t>(c.positions.size());
    // GLM-4's base 10000, and 10000 x rope_ratio 500 (the -1M model).
    for (double base : {10000.0, 25000.0, 5000000.0}) {
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

TEST_P(OpsTest, RopeWithPositionsTensor) {
  const std::vector<int32_t> positions = {0, 1, 5, 5, 1000, 32767};
  const int64_t rows = static_cast<int64_t>(positions.size());
  for (int head_dim : {14, 128}) {
    const int heads = 3, rotary = head_dim == 14 ? 6 : 64;  // a pass-through tail; GLM's
    Tensor x = Random({rows, heads * head_dim}, 17), x_host_positions = Random(x.shape(), 17);
    Vec want = ref::Rope(Read(x), rows, heads, head_dim, rotary, positions, 10000.0);
    ASSERT_TRUE(backend_->ApplyRope(&x, Indices(positions), head_dim, rotary, 10000.0).ok());
    ExpectClose(Read(x), want, tol_.rope);
    // The host-span form uploads the positions and runs the same kernel.
    ASSERT_TRUE(
        backend_->ApplyRope(&x_host_positions, positions, head_dim, rotary, 10000.0).ok());
    EXPECT_EQ(Read(x), Read(x_host_positions));
  }
}

TEST_P(OpsTest, DenseAttentionGqaCausalAndFull) {
  struct Case {
    int batch, len, heads, kv_heads, d;
    float qk_range, scale;
  };
  // Odd head_dim with sharp scores; then GLM-like ones with 1/sqrt(d) scaling: decoder 128
  // (32 heads, 2 groups), vision 112, and 64; then a group wider than a CPU attention block.
  const float s64 = 0.125f, s112 = 1.f / std::sqrt(112.f), s128 = 1.f / std::sqrt(128.f);
  for (const Case& c : {Case{3, 11, 6, 2, 9, 2.f, 0.3f}, Case{2, 37, 4, 2, 128, 1.f, s128},
                        Case{1, 129, 2, 2, 112, 1.f, s112}, Case{3, 5, 32, 2, 128, 1.f, s128},
                        Case{1, 200, 3, 1, 64, 1.f, s64},
                        // 66 query heads per KV group: more than one CPU flash block holds.
                        Case{1, 21, 132, 2, 16, 1.f, 0.25f}}) {
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
      {16, 128, 8, 1.f, 1.f / std::sqrt(128.f), {{20, 3, {7, 2}}, {0, 5, {11}}}},
      // 66 query heads per KV group: more than one CPU flash block holds.
      {4, 16, 132, 1.f, 0.25f, {{9, 2, {7, 2, 19}}, {0, 3, {5}}}}};
  for (const Case& c : cases) {
    // The cache in the activation dtype and in bf16 (what CUDA serves from); the oracle reads
    // the K/V as the cache stores them.
    for (DType cache_dtype : StorageDtypes()) {
      SCOPED_TRACE(DTypeName(cache_dtype));
      const KvCacheShape shape = SmallCacheShape(c.block_size, c.head_dim);
      auto cache = backend_->AllocateKvCache(shape, cache_dtype);
      ASSERT_TRUE(cache.ok()) << cache.status();
      EXPECT_EQ(cache->dtype(), cache_dtype);
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
        ASSERT_OK_OR_SKIP_OPTIONAL(backend_->WriteKvCache(k, v, slots, layer, &*cache));
        Vec vk = Read(k), vv = Read(v);
        if (cache_dtype == DType::kBF16) vk = RoundToBf16(vk), vv = RoundToBf16(vv);
        Vec sq(vq.begin() + row * q_width, vq.begin() + (row + s.fresh) * q_width);
        Vec part = ref::Attention(sq, vk, vv, s.fresh, n, c.heads, shape.num_kv_heads,
                                  shape.head_dim, true, scale);
        want.insert(want.end(), part.begin(), part.end());
        paged.push_back({row, s.fresh, s.cached, s.blocks});
        row += s.fresh;
      }
      Tensor out = Out({total_new, q_width});
      ASSERT_OK_OR_SKIP_OPTIONAL(
          backend_->PagedAttention(q, *cache, layer, paged, c.heads, scale, &out));
      ExpectClose(Read(out), want, AttentionTolerance(c.head_dim));

      // The same through a PagedBatch in fixed index buffers (WriteIndices), as a captured
      // step gets it: a padding row (num_queries 0) among the sequences, a longer block-table
      // buffer than needed, and loose upper bounds.
      PagedBatchHost host = PagedBatchHost::From(paged);
      host.sequences.insert(host.sequences.begin() + 4, {0, 0, 0, 0});
      PagedBatch batch;
      batch.sequences = backend_->Empty(DType::kI32, {host.num_sequences(), 4});
      batch.block_tables =
          backend_->Empty(DType::kI32, {static_cast<int64_t>(host.block_tables.size()) + 3});
      ASSERT_TRUE(backend_->ZeroFill(&batch.block_tables).ok());
      ASSERT_TRUE(backend_->WriteIndices(host.sequences, &batch.sequences).ok());
      ASSERT_TRUE(backend_->WriteIndices(host.block_tables, &batch.block_tables).ok());
      batch.max_num_queries = host.max_num_queries + 3;
      batch.max_kv_len = host.max_kv_len + 5;
      Tensor out_batch = Out({total_new, q_width});
      ASSERT_TRUE(
          backend_->PagedAttention(q, *cache, layer, batch, c.heads, scale, &out_batch).ok());
      ExpectClose(Read(out_batch), want, AttentionTolerance(c.head_dim));

      // A block table too short for cached + new tokens, and a block id outside the cache.
      std::vector<int32_t> short_table = {c.seqs[0].blocks[0]};
      std::vector<PagedSequence> bad = {{0, 1, c.block_size + 1, short_table}};
      EXPECT_EQ(backend_->PagedAttention(q, *cache, layer, bad, c.heads, scale, &out).code(),
                absl::StatusCode::kInvalidArgument);
      std::vector<int32_t> wild_table = {7, 20};
      bad = {{0, 1, c.block_size, wild_table}};
      EXPECT_FALSE(backend_->PagedAttention(q, *cache, layer, bad, c.heads, scale, &out).ok());
      Tensor k1 = Random({1, kv_width}, 1), v1 = Random({1, kv_width}, 2);
      std::vector<int32_t> bad_slot = {20 * c.block_size};
      EXPECT_FALSE(backend_->WriteKvCache(k1, v1, bad_slot, layer, &*cache).ok());
    }
  }
}

// Decode context parallelism: each of `dcp` caches holds the tokens i % dcp == rank of every
// sequence; attention over a share returns a partial output and its log-sum-exp, and merging
// the partials by their log-sum-exps gives full attention. Also checks the log-sum-exp itself
// (against a float64 one), the rows that see no key of a share (0 output, -inf), and that a
// block table sized for the share (not the whole sequence) is enough.
TEST_P(OpsTest, PagedAttentionOverContextSharesMergesToFullAttention) {
  struct Seq {
    int64_t cached, fresh;
  };
  struct Case {
    int block_size, head_dim, heads;
    std::vector<Seq> seqs;
  };
  // Head dims the CUDA tensor-core kernel takes (it alone implements shares).
  const std::vector<Case> cases = {{4, 64, 4, {{9, 1}, {5, 6}, {0, 7}}},
                                   {16, 128, 8, {{37, 1}, {0, 5}, {20, 3}}}};
  for (const Case& c : cases) {
    for (int dcp : {2, 3}) {
      for (DType cache_dtype : StorageDtypes()) {
        SCOPED_TRACE(::testing::Message() << DTypeName(cache_dtype) << " dcp " << dcp
                                          << " head_dim " << c.head_dim);
        const KvCacheShape shape = SmallCacheShape(c.block_size, c.head_dim);
        const int64_t kv_width = shape.num_kv_heads * shape.head_dim;
        const int64_t q_width = int64_t{c.heads} * c.head_dim;
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        const int layer = 0;
        int64_t total_new = 0;
        for (const Seq& s : c.seqs) total_new += s.fresh;
        Tensor q = Random({total_new, q_width}, 31);
        const Vec vq = Read(q);
        std::vector<Tensor> keys, values;
        Vec want;
        int64_t row = 0;
        for (size_t i = 0; i < c.seqs.size(); ++i) {
          const Seq& s = c.seqs[i];
          const int64_t n = s.cached + s.fresh;
          keys.push_back(Random({n, kv_width}, 200 + static_cast<uint32_t>(i)));
          values.push_back(Random({n, kv_width}, 300 + static_cast<uint32_t>(i)));
          Vec vk = Read(keys.back()), vv = Read(values.back());
          if (cache_dtype == DType::kBF16) vk = RoundToBf16(vk), vv = RoundToBf16(vv);
          Vec sq(vq.begin() + row * q_width, vq.begin() + (row + s.fresh) * q_width);
          Vec part = ref::Attention(sq, vk, vv, s.fresh, n, c.heads, shape.num_kv_heads,
                                    shape.head_dim, true, scale);
          want.insert(want.end(), part.begin(), part.end());
          row += s.fresh;
        }
        // Per rank: its share written at local slots, the partial and its log-sum-exp.
        std::vector<Vec> outs(dcp), lses(dcp);
        for (int r = 0; r < dcp; ++r) {
          const ContextShare share{dcp, r};
          auto cache = backend_->AllocateKvCache(shape, cache_dtype);
          ASSERT_TRUE(cache.ok()) << cache.status();
          std::vector<std::vector<int32_t>> tables;
          std::vector<PagedSequence> paged;
          int32_t next_block = 0;
          row = 0;
          for (size_t i = 0; i < c.seqs.size(); ++i) {
            const Seq& s = c.seqs[i];
            const int64_t n = s.cached + s.fresh;
            const int64_t local = share.LocalTokens(n);
            std::vector<int32_t> table((local + c.block_size - 1) / c.block_size);
            for (int32_t& b : table) b = next_block++;
            // The kernel-facing slots: global token t -> local token t / dcp, -1 elsewhere.
            std::vector<int32_t> slots(n, -1);
            for (int64_t t = r; t < n; t += dcp) {
              const int64_t j = t / dcp;
              slots[t] = table[j / c.block_size] * c.block_size + j % c.block_size;
            }
            auto slot_tensor = backend_->UploadIndices(slots);  // -1 rows are skipped
            ASSERT_TRUE(slot_tensor.ok()) << slot_tensor.status();
            ASSERT_OK_OR_SKIP_OPTIONAL(
                backend_->WriteKvCache(keys[i], values[i], *slot_tensor, layer, &*cache));
            tables.push_back(std::move(table));
            row += s.fresh;
          }
          row = 0;
          for (size_t i = 0; i < c.seqs.size(); ++i) {
            paged.push_back({row, c.seqs[i].fresh, c.seqs[i].cached, tables[i]});
            row += c.seqs[i].fresh;
          }
          Tensor out = Out({total_new, q_width});
          Tensor lse = backend_->Empty(DType::kF32, {total_new, c.heads});
          ASSERT_OK_OR_SKIP_OPTIONAL(backend_->PagedAttention(q, *cache, layer, paged, c.heads,
                                                              scale, &out, &lse, share));
          outs[r] = Read(out);
          lses[r] = Read(lse);
          // The log-sum-exp of rank r against float64 over the keys of its share.
          row = 0;
          double worst = 0;
          for (size_t i = 0; i < c.seqs.size(); ++i) {
            const Seq& s = c.seqs[i];
            Vec vk = Read(keys[i]);
            if (cache_dtype == DType::kBF16) vk = RoundToBf16(vk);
            for (int64_t qi = 0; qi < s.fresh; ++qi) {
              const int64_t visible = s.cached + qi + 1;  // global keys [0, visible)
              for (int h = 0; h < c.heads; ++h) {
                const int g = h / (c.heads / shape.num_kv_heads);
                double m = -INFINITY;
                std::vector<double> scores;
                for (int64_t t = r; t < visible; t += dcp) {
                  double dot = 0;
                  for (int d = 0; d < c.head_dim; ++d) {
                    dot += static_cast<double>(vq[(row + qi) * q_width + h * c.head_dim + d]) *
                           vk[t * kv_width + g * c.head_dim + d];
                  }
                  scores.push_back(dot * scale);
                  m = std::max(m, scores.back());
                }
                const double got = lses[r][(row + qi) * c.heads + h];
                if (scores.empty()) {
                  EXPECT_TRUE(std::isinf(got) && got < 0) << "row " << row + qi << " sees no key";
                  for (int d = 0; d < c.head_dim; ++d) {
                    EXPECT_EQ(outs[r][(row + qi) * q_width + h * c.head_dim + d], 0.0f);
                  }
                  continue;
                }
                double sum = 0;
                for (double sc : scores) sum += std::exp(sc - m);
                worst = std::max(worst, std::fabs(got - (m + std::log(sum))));
              }
            }
            row += s.fresh;
          }
          EXPECT_LT(worst, 2 * AttentionTolerance(c.head_dim)) << "rank " << r << " lse";
        }
        // Merge by log-sum-exp.
        Vec merged(want.size(), 0.0f);
        for (int64_t t = 0; t < total_new; ++t) {
          for (int h = 0; h < c.heads; ++h) {
            double m = -INFINITY;
            for (int r = 0; r < dcp; ++r) m = std::max(m, lses[r][t * c.heads + h]);
            double total = 0;
            for (int r = 0; r < dcp; ++r) total += std::exp(lses[r][t * c.heads + h] - m);
            for (int r = 0; r < dcp; ++r) {
              const double w = std::exp(lses[r][t * c.heads + h] - m) / total;
              for (int d = 0; d < c.head_dim; ++d) {
                merged[t * q_width + h * c.head_dim + d] +=
                    w * outs[r][t * q_width + h * c.head_dim + d];
              }
            }
          }
        }
        ExpectClose(merged, want, AttentionTolerance(c.head_dim));
      }
    }
  }
}

TEST_P(OpsTest, WriteKvCacheFromSlotsTensorSkipsNegativeSlots) {
  const KvCacheShape shape = SmallCacheShape(4, 6);
  const int64_t width = shape.num_kv_heads * shape.head_dim;
  for (DType cache_dtype : StorageDtypes()) {
    SCOPED_TRACE(DTypeName(cache_dtype));
    auto cache = backend_->AllocateKvCache(shape, cache_dtype);
    ASSERT_TRUE(cache.ok()) << cache.status();
    Tensor k = Random({4, width}, 30), v = Random({4, width}, 31);
    // Row 1 is padding; 79 is the cache's last slot.
    const std::vector<int32_t> slots = {5, -1, 79, 0};
    ASSERT_OK_OR_SKIP_OPTIONAL(backend_->WriteKvCache(k, v, Indices(slots), 1, &*cache));
    Vec vk = Read(k), vv = Read(v);
    if (cache_dtype == DType::kBF16) vk = RoundToBf16(vk), vv = RoundToBf16(vv);
    const int64_t cache_elems = int64_t{shape.num_blocks} * shape.block_size * width;
    Vec want_k(cache_elems, 0.0), want_v(cache_elems, 0.0);
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] < 0) continue;
      std::copy_n(vk.begin() + i * width, width, want_k.begin() + slots[i] * width);
      std::copy_n(vv.begin() + i * width, width, want_v.begin() + slots[i] * width);
    }
    EXPECT_EQ(Read(cache->key_tensor(1)), want_k);
    EXPECT_EQ(Read(cache->value_tensor(1)), want_v);
    EXPECT_EQ(Read(cache->key_tensor(0)), Vec(cache_elems, 0.0));  // other layers untouched
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

std::string OpsTestName(const ::testing::TestParamInfo<OpsParam>& info) {
  return std::get<0>(info.param) + "_" + std::string(DTypeName(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OpsTest,
                         ::testing::Combine(::testing::ValuesIn(AvailableBackends()),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         OpsTestName);

// Memory, index buffers and argument validation: dtype-independent, once per backend.
class MemoryTest : public BackendFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { SetUpBackend(GetParam()); }
};

TEST_P(MemoryTest, UploadStoresTheRequestedDtype) {
  const std::vector<float> values = ref::RandomFloats(30, 50, 3.0f);
  const Vec exact = ref::ToDouble(values), rounded = RoundToBf16(exact);
  Tensor f32 = Make({5, 6}, values);
  EXPECT_EQ(f32.dtype(), DType::kF32);
  EXPECT_EQ(f32.device(), backend_->device());
  EXPECT_EQ(Read(f32), exact);

  Tensor bf16 = Make({5, 6}, values, DType::kBF16);
  EXPECT_EQ(bf16.dtype(), DType::kBF16);
  EXPECT_EQ(bf16.device(), backend_->device());
  EXPECT_EQ(bf16.shape(), (Shape{5, 6}));
  EXPECT_EQ(Read(bf16), rounded);  // Download of a float tensor is f32
  EXPECT_NE(rounded, exact);

  // A bf16 host tensor (the checkpoint) kept as bf16, or widened to f32.
  const Tensor host_bf16 = Tensor::FromF32({5, 6}, values).ToBF16();
  for (DType storage : {DType::kBF16, DType::kF32}) {
    auto t = backend_->Upload(host_bf16, storage);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->dtype(), storage);
    EXPECT_EQ(Read(*t), rounded);
  }

  const std::vector<int32_t> ids = {3, -1, 151551, 0};
  Tensor i32 = Indices(ids);
  EXPECT_EQ(i32.dtype(), DType::kI32);
  EXPECT_EQ(ReadIndices(i32), ids);

  // Index storage needs an i32 source, float storage a float source; i64 is not a storage.
  const Tensor host_f32 = Tensor::FromF32({2}, {1.f, 2.f});
  const Tensor host_i32 = Tensor::FromI32({2}, {1, 2});
  EXPECT_EQ(backend_->Upload(host_f32, DType::kI32).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Upload(host_i32, DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Upload(host_i32, DType::kI64).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->Upload(Tensor(), DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(MemoryTest, UploadIndicesAndPagedBatch) {
  auto ids = backend_->UploadIndices({7, -2, 9});
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ReadIndices(*ids), (std::vector<int32_t>{7, -2, 9}));
  auto empty = backend_->UploadIndices({});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->shape(), (Shape{0}));
  EXPECT_EQ(empty->dtype(), DType::kI32);

  const std::vector<int32_t> table = {4, 1};
  const PagedSequence seqs[] = {{0, 2, 3, table}, {2, 1, 0, absl::MakeConstSpan(table).first(1)}};
  auto batch = backend_->UploadPagedBatch(PagedBatchHost::From(seqs));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->sequences.shape(), (Shape{2, 4}));
  EXPECT_EQ(ReadIndices(batch->sequences), (std::vector<int32_t>{0, 2, 5, 0, 2, 1, 1, 2}));
  EXPECT_EQ(ReadIndices(batch->block_tables), (std::vector<int32_t>{4, 1, 4}));
  EXPECT_EQ(batch->max_num_queries, 2);
  EXPECT_EQ(batch->max_kv_len, 5);

  PagedBatchHost ragged;
  ragged.sequences = {0, 1, 1};  // not 4 values per sequence
  EXPECT_EQ(backend_->UploadPagedBatch(ragged).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(MemoryTest, ZeroFillClearsEveryDtype) {
  Tensor f32 = Random({3, 7}, 51, 1.0f, DType::kF32);
  Tensor bf16 = Random({3, 7}, 52, 1.0f, DType::kBF16);
  Tensor i32 = Indices({4, 5, 6});
  for (Tensor* t : {&f32, &bf16}) {
    ASSERT_TRUE(backend_->ZeroFill(t).ok());
    EXPECT_EQ(Read(*t), Vec(21, 0.0));
  }
  ASSERT_TRUE(backend_->ZeroFill(&i32).ok());
  EXPECT_EQ(ReadIndices(i32), (std::vector<int32_t>{0, 0, 0}));
  Tensor undefined;
  EXPECT_EQ(backend_->ZeroFill(&undefined).code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(MemoryTest, WriteIndicesKeepsTheBuffer) {
  Tensor ids = backend_->Empty(DType::kI32, {2, 4});
  ASSERT_TRUE(backend_->ZeroFill(&ids).ok());
  const void* address = ids.raw_data();
  ASSERT_TRUE(backend_->WriteIndices({7, 8, 9}, &ids, 3).ok());
  EXPECT_EQ(ids.raw_data(), address);
  EXPECT_EQ(ids.shape(), (Shape{2, 4}));
  EXPECT_EQ(ReadIndices(ids), (std::vector<int32_t>{0, 0, 0, 7, 8, 9, 0, 0}));
  ASSERT_TRUE(backend_->WriteIndices({-4}, &ids).ok());
  ASSERT_TRUE(backend_->WriteIndices({}, &ids, 8).ok());  // nothing, at the end
  EXPECT_EQ(ReadIndices(ids), (std::vector<int32_t>{-4, 0, 0, 7, 8, 9, 0, 0}));
  EXPECT_EQ(ids.raw_data(), address);

  // Overflow at either end, and a non-index destination.
  EXPECT_EQ(backend_->WriteIndices({1, 2, 3}, &ids, 6).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->WriteIndices({1}, &ids, -1).code(), absl::StatusCode::kInvalidArgument);
  Tensor floats = Random({8}, 53, 1.0f, DType::kF32);
  EXPECT_EQ(backend_->WriteIndices({1}, &floats).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadIndices(ids), (std::vector<int32_t>{-4, 0, 0, 7, 8, 9, 0, 0}));
}

TEST_P(MemoryTest, AllocateKvCacheIsZeroedInTheRequestedDtype) {
  KvCacheShape shape = SmallCacheShape(4, 6);
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    auto cache = backend_->AllocateKvCache(shape, dtype);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_EQ(cache->dtype(), dtype);
    EXPECT_EQ(cache->device(), backend_->device());
    for (int l = 0; l < shape.num_layers; ++l) {
      for (const Tensor* t : {&cache->key_tensor(l), &cache->value_tensor(l)}) {
        EXPECT_EQ(t->dtype(), dtype);
        EXPECT_EQ(t->shape(), (Shape{20, 4, 2, 6}));
        EXPECT_EQ(Read(*t), Vec(20 * 4 * 2 * 6, 0.0));
      }
    }
  }
  EXPECT_EQ(backend_->AllocateKvCache(shape, DType::kI32).status().code(),
            absl::StatusCode::kInvalidArgument);
  shape.block_size = 0;
  EXPECT_EQ(backend_->AllocateKvCache(shape, DType::kF32).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(MemoryTest, IndexTensorArgumentsAreValidated) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  Tensor table = Random({6, 11}, 40, 1.0f, DType::kF32), out = Out({2, 11});
  Tensor float_ids = Random({2}, 54, 1.0f, DType::kF32);
  // Row ids: i32 only, 1-d, one per output row.
  EXPECT_EQ(backend_->GatherRows(table, float_ids, &out).code(), kInvalid);
  auto ids_2d = Indices({1, 2}).Reshape({1, 2});
  ASSERT_TRUE(ids_2d.ok());
  EXPECT_EQ(backend_->GatherRows(table, *ids_2d, &out).code(), kInvalid);
  EXPECT_EQ(backend_->GatherRows(table, Indices({1, 2, 3}), &out).code(), kInvalid);

  Tensor x = Random({2, 14}, 55);
  EXPECT_EQ(backend_->ApplyRope(&x, float_ids, 14, 6, 1e4).code(), kInvalid);
  EXPECT_EQ(backend_->ApplyRope(&x, Indices({0, 1, 2}), 14, 6, 1e4).code(), kInvalid);

  const KvCacheShape shape = SmallCacheShape(4, 6);
  auto cache = backend_->AllocateKvCache(shape, DType::kF32);
  ASSERT_TRUE(cache.ok()) << cache.status();
  Tensor k = Random({2, 12}, 56), v = Random({2, 12}, 57);
  EXPECT_EQ(backend_->WriteKvCache(k, v, float_ids, 0, &*cache).code(), kInvalid);
  EXPECT_EQ(backend_->WriteKvCache(k, v, Indices({1}), 0, &*cache).code(), kInvalid);
  EXPECT_EQ(backend_->WriteKvCache(k, v, Indices({1, 2}), 2, &*cache).code(), kInvalid);

  // PagedBatch: sequences i32 [num_seqs, 4], block tables i32 [entries], bounds >= 0.
  Tensor q = Random({1, 24}, 58), attn = Out({1, 24});
  PagedBatch good;
  auto seqs = Indices({0, 1, 1, 0}).Reshape({1, 4});
  ASSERT_TRUE(seqs.ok());
  good.sequences = *seqs;
  good.block_tables = Indices({3});
  good.max_num_queries = 1;
  good.max_kv_len = 1;
  const absl::Status ok = backend_->PagedAttention(q, *cache, 0, good, 4, 1.f, &attn);
  ASSERT_TRUE(ok.ok()) << ok;
  PagedBatch bad = good;
  auto seqs3 = Indices({0, 1, 1}).Reshape({1, 3});
  ASSERT_TRUE(seqs3.ok());
  bad.sequences = *seqs3;
  EXPECT_EQ(backend_->PagedAttention(q, *cache, 0, bad, 4, 1.f, &attn).code(), kInvalid);
  bad.sequences = Indices({0, 1, 1, 0});  // 1-d
  EXPECT_EQ(backend_->PagedAttention(q, *cache, 0, bad, 4, 1.f, &attn).code(), kInvalid);
  bad = good;
  bad.block_tables = Random({1}, 59, 1.0f, DType::kF32);
  EXPECT_EQ(backend_->PagedAttention(q, *cache, 0, bad, 4, 1.f, &attn).code(), kInvalid);
  bad = good;
  bad.max_kv_len = -1;
  EXPECT_EQ(backend_->PagedAttention(q, *cache, 0, bad, 4, 1.f, &attn).code(), kInvalid);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, MemoryTest, ::testing::ValuesIn(AvailableBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ---- CPU specifics

class CpuBackendTest : public BackendFixture {
 protected:
  void SetUp() override { SetUpBackend("cpu"); }
};

TEST_F(CpuBackendTest, Bf16ActivationsAreUnimplemented) {
  EXPECT_EQ(backend_->activation_dtype(), DType::kF32);
  act_ = DType::kBF16;
  Tensor x = Random({2, 8}, 60), w = Random({3, 8}, 61), y = Out({2, 3});
  const absl::Status s = backend_->Linear(x, w, nullptr, &y);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("must be f32"), absl::string_view::npos) << s;
  EXPECT_EQ(backend_->GeluInPlace(&x).code(), absl::StatusCode::kUnimplemented);
}

TEST_F(CpuBackendTest, IndexTensorContentsAreCheckedBeforeUse) {
  // The interface trusts index tensors; the CPU checks the ones that address memory anyway.
  auto expect_invalid = [](const absl::Status& s, absl::string_view what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(what), absl::string_view::npos) << s;
  };
  Tensor table = Random({6, 11}, 40), out = Out({1, 11});
  expect_invalid(backend_->GatherRows(table, Indices({6}), &out), "row 6 outside [0, 6)");
  const KvCacheShape shape = SmallCacheShape(4, 6);
  auto cache = backend_->AllocateKvCache(shape, DType::kBF16);
  ASSERT_TRUE(cache.ok()) << cache.status();
  Tensor k = Random({1, 12}, 56), v = Random({1, 12}, 57);
  expect_invalid(backend_->WriteKvCache(k, v, Indices({80}), 0, &*cache),
                 "slot 80 outside [0, 80)");
  Tensor q = Random({1, 24}, 58), attn = Out({1, 24});
  PagedBatch batch;
  auto seqs = Indices({0, 1, 5, 0}).Reshape({1, 4});  // 5 tokens need 2 blocks, table has 1
  ASSERT_TRUE(seqs.ok());
  batch.sequences = *seqs;
  batch.block_tables = Indices({3});
  expect_invalid(backend_->PagedAttention(q, *cache, 0, batch, 4, 1.f, &attn),
                 "block table end");
  batch.block_tables = Indices({3, 20});
  expect_invalid(backend_->PagedAttention(q, *cache, 0, batch, 4, 1.f, &attn), "block id 20");
  *seqs = *Indices({1, 1, 1, 0}).Reshape({1, 4});  // query row 1 of 1
  batch.sequences = *seqs;
  expect_invalid(backend_->PagedAttention(q, *cache, 0, batch, 4, 1.f, &attn), "query rows");
}

TEST_F(CpuBackendTest, HostBlockAccessorsOnlyForHostF32Caches) {
  const KvCacheShape shape = SmallCacheShape(4, 6);
  PagedKvCache host(shape);  // host f32, zero-filled
  EXPECT_EQ(host.dtype(), DType::kF32);
  EXPECT_EQ(host.key_block(1, 3),
            host.key_tensor(1).data<float>() + 3 * shape.floats_per_block_per_layer());
  auto cache = backend_->AllocateKvCache(shape, DType::kF32);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->value_block(0, 2),
            cache->value_tensor(0).data<float>() + 2 * shape.floats_per_block_per_layer());

  auto bf16 = backend_->AllocateKvCache(shape, DType::kBF16);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_DEATH(bf16->key_block(0, 0), "only for host f32 caches");
  const PagedKvCache& const_bf16 = *bf16;
  EXPECT_DEATH(const_bf16.value_block(0, 0), "only for host f32 caches");
}

}  // namespace
}  // namespace glm4v
