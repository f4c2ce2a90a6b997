// CPU kernels at GLM-4V-9B's real shapes, next to the machine's own floors measured in the same
// run (read bandwidth over all pool threads; OpenBLAS sgemm at 4096^3):
//
//   bazel run -c opt //tools/bench:cpu_kernels_bench
//
// - bf16 Linear layers (weights read in place), 1 to 1,611 rows, against the read bandwidth
//   and the sgemm rate;
// - dense attention of the vision tower: one 1120x1120 image = 6,401 tokens, 16 heads x 112;
// - paged attention of the decoder (32 query heads, 2 KV groups x 128, f32 and bf16 caches):
//   a 1,613-row prefill (the image question) and decode tokens at several context lengths.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/dtype.h"
#include "common/tensor.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/linear_weight.h"
#include "kernels/cpu/machine_floors.h"
#include "kernels/cpu/matmul_bf16.h"
#include "kernels/cpu/onednn_matmul.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/simd_level.h"
#include "model/kv_cache.h"

ABSL_FLAG(int, iters, 3, "timed repetitions per figure (best is reported)");
ABSL_FLAG(bool, vision_attention, true, "time the vision tower's dense attention");
ABSL_FLAG(std::string, only, "",
          "run one section after the floors: linear (bf16), quantized (int8 / int4), gelu, "
          "attention, paged; empty: all");

namespace glm4v {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
double BestSeconds(int iters, Fn fn) {
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    const auto start = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void BenchVisionAttention(int iters, double gemm_rate) {
  const int64_t len = 6401;
  const int heads = 16, head_dim = 112;
  const int64_t width = int64_t{heads} * head_dim;
  const std::vector<float> q = Random(len * width, 3), k = Random(len * width, 4),
                           v = Random(len * width, 5);
  std::vector<float> out(len * width);
  const double s = BestSeconds(iters, [&] {
    cpu::Attention(q.data(), k.data(), v.data(), 1, len, heads, heads, head_dim, false,
                   1.0f / std::sqrt(float{head_dim}), out.data());
  });
  const double flops = 4.0 * len * len * width;
  std::printf("| vision dense attention, 6,401 tokens, 16 x 112 (one layer) | %.3f s | %.1f "
              "GFLOP/s | %.0f %% of sgemm |\n",
              s, flops / s / 1e9, 100.0 * flops / s / gemm_rate);
}

// The vision MLP's activation over one layer's 6,401 x 15,360 values, in place (reads and
// writes each f32 once: the floor is 8 bytes per value at the read bandwidth).
void BenchGelu(int iters, double bandwidth) {
  const int64_t n = int64_t{6401} * 15360;
  const std::vector<float> x0 = Random(n, 11);
  std::vector<float> x = x0;
  const double s = BestSeconds(iters, [&] { cpu::Gelu(x.data(), n); });
  std::printf("| GELU (erf), 6,401 x 15,360 (one vision layer's MLP) | %.1f ms | %.1f GB/s "
              "read + written | %.0f %% of bandwidth |\n",
              s * 1e3, 8.0 * n / s / 1e9, 100.0 * 8.0 * n / s / bandwidth);
}

// One sequence: `cached` keys already in the cache and `queries` new rows.
void BenchPaged(int iters, DType cache_dtype, int64_t cached, int64_t queries, double bandwidth,
                double gemm_rate) {
  const int heads = 32, kv_heads = 2, head_dim = 128, block_size = 16;
  const int64_t kv_len = cached + queries;
  KvCacheShape shape;
  shape.num_layers = 1;
  shape.block_size = block_size;
  shape.num_kv_heads = kv_heads;
  shape.head_dim = head_dim;
  shape.num_blocks = static_cast<int>((kv_len + block_size - 1) / block_size);
  std::vector<Tensor> keys, values;
  keys.push_back(Tensor::Empty(cache_dtype, {shape.num_blocks, block_size, kv_heads, head_dim}));
  values.push_back(Tensor::Empty(cache_dtype, {shape.num_blocks, block_size, kv_heads, head_dim}));
  PagedKvCache cache(shape, std::move(keys), std::move(values));
  // Fill the cache with random keys and values, slot j = row j.
  const int64_t kv_row = int64_t{kv_heads} * head_dim;
  const std::vector<float> kv = Random(kv_len * kv_row, 6);
  std::vector<int32_t> slots(kv_len);
  for (int64_t j = 0; j < kv_len; ++j) slots[j] = static_cast<int32_t>(j);
  cpu::WriteKvCache(kv.data(), kv.data(), slots.data(), kv_len, 0, &cache);
  std::vector<int32_t> table(shape.num_blocks);
  for (int b = 0; b < shape.num_blocks; ++b) table[b] = b;
  const int32_t sequences[4] = {0, static_cast<int32_t>(queries), static_cast<int32_t>(kv_len), 0};
  const std::vector<float> q = Random(queries * heads * head_dim, 7);
  std::vector<float> out(queries * heads * head_dim);
  const double s = BestSeconds(iters, [&] {
    cpu::PagedAttention(q.data(), cache, 0, sequences, 1, table.data(), heads,
                        1.0f / std::sqrt(128.0f), out.data());
  });
  const double bytes = 2.0 * kv_len * kv_row * DTypeSize(cache_dtype);
  // Causal: query i sees cached + i + 1 keys.
  const double pairs = queries * (cached + (queries + 1) / 2.0);
  const double flops = 4.0 * pairs * heads * head_dim;
  std::printf("| paged attention %s cache, %lld cached + %lld new | %.3f ms | %.1f GFLOP/s "
              "(%.0f %% of sgemm) | KV read %.1f GB/s (%.0f %% of bandwidth) |\n",
              std::string(DTypeName(cache_dtype)).c_str(), static_cast<long long>(cached),
              static_cast<long long>(queries), s * 1e3, flops / s / 1e9,
              100.0 * flops / s / gemm_rate, bytes / s / 1e9, 100.0 * bytes / s / bandwidth);
}

// Linear layers with bf16 weights from decode to prefill sizes: one decoder layer's four (GLM-4-9B: QKV
// 4608x4096, attention output 4096x4096, MLP in 27392x4096, MLP out 4096x13696) and the LM head
// (151552x4096), weights read once per call.
void BenchDecodeLinear(int iters, double bandwidth, double gemm_rate) {
  const bool onednn = cpu::OneDnnMatmulEnabled();
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const Shape shapes[] = {{"decoder layer (QKV + out + MLP in + MLP out)", 0, 0},
                          {"LM head 151552 x 4096", 151552, 4096}};
  const Shape layer[] = {{"qkv", 4608, 4096}, {"dense", 4096, 4096}, {"h_to_4h", 27392, 4096},
                         {"4h_to_h", 4096, 13696}};
  for (const Shape& shape : shapes) {
    std::vector<Shape> parts;
    if (shape.n == 0) {
      parts.assign(std::begin(layer), std::end(layer));
    } else {
      parts.push_back(shape);
    }
    std::vector<std::vector<uint16_t>> weights;
    int64_t bytes = 0, max_n = 0, max_k = 0;
    for (const Shape& p : parts) {
      std::vector<uint16_t> w(p.n * p.k);
      std::mt19937 rng(static_cast<uint32_t>(p.n));
      for (uint16_t& v : w) v = F32ToBF16(static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 1e-3f);
      weights.push_back(std::move(w));
      bytes += p.n * p.k * 2;
      max_n = std::max(max_n, p.n);
      max_k = std::max(max_k, p.k);
    }
    for (const int64_t m : {1, 4, 16, 32, 256, 1611}) {
      const std::vector<float> x = Random(m * max_k, 8);
      std::vector<float> y(m * max_n);
      // The exact path; then, for prefill sizes, the opt-in bf16 activations where the CPU has
      // a bf16 dot product (GLM4V_CPU_MATMUL=bf16): our own block, then oneDNN.
      for (const int mode : {0, 1, 2}) {
        const bool bf16_activations = mode > 0;
        if (bf16_activations && (m < cpu::kBf16ActivationMinRows || !cpu::CpuHasBf16Dot())) {
          continue;
        }
        if (mode == 2 && (!onednn || m < cpu::kOneDnnMinRows)) continue;
        cpu::SetBf16ActivationMatmul(bf16_activations);
        cpu::SetOneDnnMatmul(mode == 2);
        const double s = BestSeconds(m > 32 ? 1 : iters + 2, [&] {
          for (size_t i = 0; i < parts.size(); ++i) {
            cpu::Linear(x.data(), weights[i].data(), DType::kBF16, nullptr, m, parts[i].n,
                        parts[i].k, false, y.data());
          }
        });
        const double flops = 2.0 * m * bytes / 2;
        std::printf("| bf16 Linear, %s, %lld row%s%s | %.2f ms | %.1f GB/s of weights, %.1f "
                    "GFLOP/s | %.0f %% of bandwidth, %.0f %% of sgemm |\n",
                    shape.name, static_cast<long long>(m), m == 1 ? "" : "s",
                    mode == 0 ? "" : mode == 1 ? ", bf16 activations (own)" : ", bf16 activations (oneDNN)", s * 1e3, bytes / s / 1e9,
                    flops / s / 1e9, 100.0 * bytes / s / bandwidth, 100.0 * flops / s / gemm_rate);
      }
      cpu::SetBf16ActivationMatmul(false);
      cpu::SetOneDnnMatmul(onednn);
    }
  }
}

// One decoder layer's four Linear layers with int8 / int4 weights (quantized from random
// Gaussian ones), decode to prefill sizes: bytes are the quantized values + scales (+ zeros).
void BenchQuantizedLinear(int iters, double bandwidth, double gemm_rate) {
  struct Part {
    int64_t n, k;
  };
  const Part layer[] = {{4608, 4096}, {4096, 4096}, {27392, 4096}, {4096, 13696}};
  for (const WeightFormat format : {WeightFormat::kInt8, WeightFormat::kInt4}) {
    std::vector<LinearWeight> weights;
    int64_t bytes = 0, params = 0;
    for (const Part& p : layer) {
      const std::vector<float> w = Random(p.n * p.k, 9);
      auto q = QuantizeLinearWeight(Tensor::FromF32({p.n, p.k}, w), format);
      if (!q.ok()) return;
      bytes += static_cast<int64_t>(q->nbytes());
      params += p.n * p.k;
      weights.push_back(*std::move(q));
    }
    for (const int64_t m : {1, 4, 16, 256, 1611}) {
     for (const bool bf16_activations : {false, true}) {
      if (bf16_activations && (m < cpu::kBf16ActivationMinRows || !cpu::CpuHasBf16Dot())) {
        continue;
      }
      cpu::SetBf16ActivationMatmul(bf16_activations);
      const std::vector<float> x = Random(m * 13696, 10);
      std::vector<float> y(m * 27392);
      const double s = BestSeconds(m > 16 ? 1 : iters + 2, [&] {
        for (const LinearWeight& w : weights) {
          cpu::LinearQuantized(x.data(), w, nullptr, m, false, y.data());
        }
      });
      cpu::SetBf16ActivationMatmul(false);
      const double flops = 2.0 * m * params;
      std::printf("| %s Linear, decoder layer, %lld row%s%s (%.0f MB) | %.2f ms | %.1f GB/s of "
                  "weights, %.1f GFLOP/s | %.0f %% of bandwidth, %.0f %% of sgemm |\n",
                  WeightFormatName(format).c_str(), static_cast<long long>(m), m == 1 ? "" : "s",
                  bf16_activations ? ", bf16 activations" : "", bytes / 1e6, s * 1e3,
                  bytes / s / 1e9, flops / s / 1e9, 100.0 * bytes / s / bandwidth,
                  100.0 * flops / s / gemm_rate);
     }
    }
  }
}

int Main() {
  const int iters = absl::GetFlag(FLAGS_iters);
  std::printf("# cpu_kernels_bench: simd %s, %d pool threads\n",
              cpu::SimdLevelName(cpu::ActiveSimdLevel()), cpu::NumThreads());
  const double bandwidth = cpu::MeasureReadBandwidth();
  const double gemm_rate = cpu::MeasureSgemmRate();
  std::printf("read bandwidth (all threads, 512 MiB, best of 5): %.1f GB/s\n", bandwidth / 1e9);
  std::printf("OpenBLAS sgemm 4096^3 (best of 2): %.1f GFLOP/s\n", gemm_rate / 1e9);
  const double bf16_rate = cpu::MeasureBf16GemmRate();
  if (bf16_rate > 0) {
    std::printf("oneDNN bf16 matmul 4096^3 (best of 2): %.1f GFLOP/s\n\n", bf16_rate / 1e9);
  } else {
    std::printf("oneDNN bf16 matmul: unavailable here (no JIT bf16 kernel for this CPU, or "
                "GLM4V_ONEDNN=0); bf16-activation products use our own kernels\n\n");
  }
  std::printf("| kernel | time | rate | against the floor |\n|---|---|---|---|\n");
  const std::string only = absl::GetFlag(FLAGS_only);
  auto section = [&](const char* name) { return only.empty() || only == name; };
  if (section("linear")) BenchDecodeLinear(iters, bandwidth, gemm_rate);
  if (section("quantized")) BenchQuantizedLinear(iters, bandwidth, gemm_rate);
  if (section("attention") && absl::GetFlag(FLAGS_vision_attention)) {
    BenchVisionAttention(iters, gemm_rate);
  }
  if (section("gelu")) BenchGelu(iters, bandwidth);
  if (section("paged")) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      BenchPaged(iters, dtype, 0, 1613, bandwidth, gemm_rate);
      for (int64_t context : {1024, 8192, 32768}) {
        BenchPaged(iters, dtype, context, 1, bandwidth, gemm_rate);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return glm4v::Main();
}
