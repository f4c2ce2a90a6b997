#include "kernels/testing/op_reference.h"

#include <algorithm>
#include <cmath>

namespace glm4v {
namespace reference {

std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Vec ToDouble(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

Vec ToDouble(const Tensor& t) {
  Tensor f = t.ToF32();
  const float* p = f.data<float>();
  return Vec(p, p + f.numel());
}

double MaxAbsDiff(const Vec& a, const Vec& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates
  }
  return m;
}

double MaxAbs(const Vec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

Vec Linear(const Vec& x, const Vec& w, const Vec& bias, int64_t m, int64_t n, int64_t k) {
  Vec y(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = bias.empty() ? 0.0 : bias[j];
      for (int64_t t = 0; t < k; ++t) s += x[i * k + t] * w[j * k + t];
      y[i * n + j] = s;
    }
  }
  return y;
}

Vec RmsNorm(const Vec& x, const Vec& w, int64_t rows, int64_t dim, double eps) {
  Vec y(rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < dim; ++i) ms += x[r * dim + i] * x[r * dim + i];
    ms /= dim;
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = x[r * dim + i] / std::sqrt(ms + eps) * w[i];
  }
  return y;
}

Vec LayerNorm(const Vec& x, const Vec& w, const Vec& b, int64_t rows, int64_t dim, double eps) {
  Vec y(rows * dim);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += std::pow(x[r * dim + i] - mean, 2);
    var /= dim;
    for (int64_t i = 0; i < dim; ++i) {
      y[r * dim + i] = (x[r * dim + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
    }
  }
  return y;
}

Vec Gelu(const Vec& x) {
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = 0.5 * x[i] * (1 + std::erf(x[i] / std::sqrt(2.0)));
  return y;
}

Vec SiluAndMul(const Vec& x, int64_t rows, int64_t half) {
  Vec y(rows * half);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < half; ++i) {
      const double a = x[r * 2 * half + i], b = x[r * 2 * half + half + i];
      y[r * half + i] = a / (1 + std::exp(-a)) * b;
    }
  }
  return y;
}

Vec Rope(const Vec& x, int64_t rows, int num_heads, int head_dim, int rotary_dim,
         const std::vector<int32_t>& positions, double base) {
  Vec y = x;
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < num_heads; ++h) {
      const int64_t o = (r * num_heads + h) * head_dim;
      for (int j = 0; j < rotary_dim / 2; ++j) {
        const double theta = 1.0 / std::pow(base, 2.0 * j / rotary_dim);
        const double a = positions[r] * theta;
        const double x0 = x[o + 2 * j], x1 = x[o + 2 * j + 1];
        y[o + 2 * j] = x0 * std::cos(a) - x1 * std::sin(a);
        y[o + 2 * j + 1] = x1 * std::cos(a) + x0 * std::sin(a);
      }
    }
  }
  return y;
}

Vec Attention(const Vec& q, const Vec& k, const Vec& v, int64_t len_q, int64_t len_k,
              int num_heads, int num_kv_heads, int head_dim, bool causal, double scale) {
  Vec out(len_q * num_heads * head_dim, 0.0);
  const int group_size = num_heads / num_kv_heads;
  for (int h = 0; h < num_heads; ++h) {
    const int g = h / group_size;
    for (int64_t i = 0; i < len_q; ++i) {
      const int64_t visible = causal ? i + (len_k - len_q) + 1 : len_k;
      Vec s(visible);
      double mx = -INFINITY;
      for (int64_t j = 0; j < visible; ++j) {
        double d = 0;
        for (int t = 0; t < head_dim; ++t) {
          d += q[(i * num_heads + h) * head_dim + t] * k[(j * num_kv_heads + g) * head_dim + t];
        }
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (int64_t j = 0; j < visible; ++j) {
        for (int t = 0; t < head_dim; ++t) {
          out[(i * num_heads + h) * head_dim + t] +=
              s[j] / sum * v[(j * num_kv_heads + g) * head_dim + t];
        }
      }
    }
  }
  return out;
}

Vec PatchConv(const Vec& image, const Vec& weight, const Vec& bias, int64_t batch,
              int64_t channels, int64_t height, int64_t width, int64_t out_channels, int kernel) {
  const int64_t gh = height / kernel, gw = width / kernel;
  Vec y(batch * gh * gw * out_channels);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t py = 0; py < gh; ++py) {
      for (int64_t px = 0; px < gw; ++px) {
        for (int64_t o = 0; o < out_channels; ++o) {
          double s = bias[o];
          for (int64_t c = 0; c < channels; ++c) {
            for (int ky = 0; ky < kernel; ++ky) {
              for (int kx = 0; kx < kernel; ++kx) {
                s += image[((b * channels + c) * height + py * kernel + ky) * width +
                           px * kernel + kx] *
                     weight[((o * channels + c) * kernel + ky) * kernel + kx];
              }
            }
          }
          y[((b * gh + py) * gw + px) * out_channels + o] = s;
        }
      }
    }
  }
  return y;
}

}  // namespace reference
}  // namespace glm4v
