// Naive double-precision reference implementations of every Backend op, written straight from
// the math with no tricks. They are the oracle for the CPU kernels now and the CUDA kernels
// later: feed both the same random inputs and compare.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/tensor.h"
#include "kernels/ops.h"

namespace glm4v {
namespace reference {

using Vec = std::vector<double>;

// Random f32 values in [-scale, scale) (deterministic per seed).
std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale = 1.0f);
Vec ToDouble(const std::vector<float>& v);
Vec ToDouble(const Tensor& t);  // host f32 tensor
// max |a - b| and max |b|.
double MaxAbsDiff(const Vec& a, const Vec& b);
double MaxAbs(const Vec& v);

// x [m,k], w [n,k], bias [n] or empty -> [m,n]
Vec Linear(const Vec& x, const Vec& w, const Vec& bias, int64_t m, int64_t n, int64_t k);
Vec RmsNorm(const Vec& x, const Vec& w, int64_t rows, int64_t dim, double eps);
Vec LayerNorm(const Vec& x, const Vec& w, const Vec& b, int64_t rows, int64_t dim, double eps);
Vec Gelu(const Vec& x);
Vec SiluAndMul(const Vec& x, int64_t rows, int64_t half);
Vec Rope(const Vec& x, int64_t rows, int num_heads, int head_dim, int rotary_dim,
         const std::vector<int32_t>& positions, double base);
// One sequence: q [len_q, nh*d]; k, v [len_k, nkv*d]. Query i may see keys j <= i + (len_k -
// len_q) when causal (new queries are the last len_q positions).
Vec Attention(const Vec& q, const Vec& k, const Vec& v, int64_t len_q, int64_t len_k,
              int num_heads, int num_kv_heads, int head_dim, bool causal, double scale);
// Conv2d with kernel == stride on [b,c,h,w] input, weight [out,c,k,k], bias [out]:
// -> [b*(h/k)*(w/k), out] rows in (b, y, x) order.
Vec PatchConv(const Vec& image_nchw, const Vec& weight, const Vec& bias, int64_t batch,
              int64_t channels, int64_t height, int64_t width, int64_t out_channels, int kernel);

}  // namespace reference
}  // namespace glm4v
