#include "kernels/cpu/machine_floors.h"

#include "common/dtype.h"
#include "kernels/cpu/onednn_matmul.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/row_kernels.h"

namespace glm4v {
namespace cpu {
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

}  // namespace

double MeasureReadBandwidth() {
  const int64_t floats = int64_t{128} << 20;  // 512 MiB
  std::vector<float> buffer(floats, 1.0f);
  const int64_t chunks = 256, per_chunk = floats / chunks;
  std::vector<float> sink(chunks);
  const double s = BestSeconds(5, [&] {
    ParallelFor(chunks, int64_t{1} << 30, [&](int64_t c) {
      sink[c] = MaxRow(buffer.data() + c * per_chunk, per_chunk);
    });
  });
  return floats * 4.0 / s;
}

double MeasureSgemmRate() {
  const int n = 4096;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> a(size_t{1} * n * n), b(size_t{1} * n * n), c(size_t{1} * n * n);
  for (float& v : a) v = dist(rng);
  for (float& v : b) v = dist(rng);
  const double s = BestSeconds(2, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
  });
  return 2.0 * n * n * n / s;
}

double MeasureBf16GemmRate() {
  if (!OneDnnMatmulEnabled()) return 0.0;
  const int n = 4096;
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint16_t> a(size_t{1} * n * n), b(size_t{1} * n * n);
  for (uint16_t& v : a) v = F32ToBF16(dist(rng));
  for (uint16_t& v : b) v = F32ToBF16(dist(rng));
  std::vector<float> c(size_t{1} * n * n);
  bool ran = true;
  const double s = BestSeconds(2, [&] {
    ran = ran && OneDnnMatmulBf16(a.data(), n, b.data(), n, n, false, c.data(), n);
  });
  return ran ? 2.0 * n * n * n / s : 0.0;
}

}  // namespace cpu
}  // namespace glm4v
