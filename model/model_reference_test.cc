// The whole model on a config unlike the golden one (1 KV group, 6 heads of 8, hidden != heads *
// head_dim, rope_ratio 2.5, 3 layers, vocab 512, 56x56 images, scaling 4), on random weights,
// against a naive double-precision implementation written here straight from DESIGN.md §1.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "model/glm4v_model.h"
#include "model/greedy_generate.h"
#include "model/image_splice.h"
#include "model/testing/random_checkpoint.h"

namespace glm4v {
namespace {

using Vec = std::vector<double>;
using testing::WeightMap;

constexpr int kHidden = 40, kLayers = 3, kHeads = 6, kGroups = 1, kHeadDim = 8, kFfn = 56;
constexpr int kVocab = 512, kEot = 500, kBoi = 501, kEoi = 502;
constexpr double kRopeRatio = 2.5, kRmsEps = 1.5625e-7;
constexpr int kImage = 56, kPatch = 14, kVHidden = 24, kVHeads = 3, kVLayers = 2, kVInter = 36;
constexpr double kScaling = 4.0, kVEps = 1e-6;
constexpr int kGrid = kImage / kPatch;

std::string ConfigJson() {
  return absl::StrCat(R"({"hidden_size": )", kHidden, R"(, "num_layers": )", kLayers,
                      R"(, "num_attention_heads": )", kHeads, R"(, "multi_query_group_num": )",
                      kGroups, R"(, "kv_channels": )", kHeadDim, R"(, "ffn_hidden_size": )", kFfn,
                      R"(, "padded_vocab_size": )", kVocab, R"(, "layernorm_epsilon": 1.5625e-07,
      "rope_ratio": 2.5, "seq_length": 1024, "add_qkv_bias": true, "add_bias_linear": false,
      "rmsnorm": true, "post_layer_norm": true, "original_rope": true, "multi_query_attention": true,
      "tie_word_embeddings": false, "torch_dtype": "bfloat16", "eos_token_id": [500, 503],
      "pad_token_id": 500, "boi_token_id": 501, "eoi_token_id": 502,
      "vision_config": {"hidden_act": "gelu", "in_channels": 3, "num_hidden_layers": )",
                      kVLayers, R"(, "hidden_size": )", kVHidden, R"(, "patch_size": )", kPatch,
                      R"(, "num_heads": )", kVHeads, R"(, "intermediate_size": )", kVInter,
                      R"(, "layer_norm_eps": 1e-06, "num_positions": )", kGrid * kGrid + 1,
                      R"(, "image_size": )", kImage, R"(, "scaling_factor": 4}})");
}

// ---------------------------------------------------------------- naive reference (doubles)
// Rows are std::vector<Vec>; y = W x + b with W [out, in].
using Rows = std::vector<Vec>;

class Reference {
 public:
  explicit Reference(const WeightMap* w) : w_(w) {}
  const Vec& W(const std::string& name) const { return w_->at(name).values; }

  static Vec Linear(const Vec& x, const Vec& w, const Vec* b, int out) {
    const int in = static_cast<int>(x.size());
    Vec y(out);
    for (int o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int i = 0; i < in; ++i) s += w[o * in + i] * x[i];
      y[o] = s;
    }
    return y;
  }
  static Vec Rms(const Vec& x, const Vec& w) {
    double ms = 0;
    for (double v : x) ms += v * v;
    ms /= x.size();
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] / std::sqrt(ms + kRmsEps) * w[i];
    return y;
  }
  static Vec Ln(const Vec& x, const Vec& w, const Vec& b, double eps) {
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= x.size();
    for (double v : x) var += (v - mean) * (v - mean);
    var /= x.size();
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
    return y;
  }
  static double Gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
  static double Silu(double x) { return x / (1 + std::exp(-x)); }

  // softmax(q k^T * scale) v for one head; keys visible up to `visible`.
  static Vec Attend(const Vec& q, const Rows& keys, const Rows& values, size_t visible,
                    double scale) {
    Vec s(visible);
    double mx = -INFINITY;
    for (size_t j = 0; j < visible; ++j) {
      double d = 0;
      for (size_t t = 0; t < q.size(); ++t) d += q[t] * keys[j][t];
      s[j] = d * scale;
      mx = std::max(mx, s[j]);
    }
    double sum = 0;
    for (double& e : s) sum += (e = std::exp(e - mx));
    Vec out(q.size(), 0.0);
    for (size_t j = 0; j < visible; ++j) {
      for (size_t t = 0; t < q.size(); ++t) out[t] += s[j] / sum * values[j][t];
    }
    return out;
  }

  // One image [3][S][S] -> feature rows (boi, grid/2 squared patches, eoi) / scaling.
  Rows Vision(const std::vector<float>& pix) const {
    const std::string v = "transformer.vision.";
    const int n = kGrid * kGrid;
    Rows x(n + 1, Vec(kVHidden));
    x[0] = W(v + "patch_embedding.cls_embedding");
    const Vec& pw = W(v + "patch_embedding.proj.weight");
    const Vec& pb = W(v + "patch_embedding.proj.bias");
    for (int py = 0; py < kGrid; ++py) {
      for (int px = 0; px < kGrid; ++px) {
        for (int o = 0; o < kVHidden; ++o) {
          double s = pb[o];
          for (int c = 0; c < 3; ++c)
            for (int ky = 0; ky < kPatch; ++ky)
              for (int kx = 0; kx < kPatch; ++kx)
                s += pix[(c * kImage + py * kPatch + ky) * kImage + px * kPatch + kx] *
                     pw[((o * 3 + c) * kPatch + ky) * kPatch + kx];
          x[1 + py * kGrid + px][o] = s;
        }
      }
    }
    const Vec& pos = W(v + "patch_embedding.position_embedding.weight");
    for (int r = 0; r <= n; ++r)
      for (int o = 0; o < kVHidden; ++o) x[r][o] += pos[r * kVHidden + o];
    const int hd = kVHidden / kVHeads;
    for (int l = 0; l < kVLayers; ++l) {
      const std::string q = absl::StrCat(v, "transformer.layers.", l, ".");
      Rows qs, ks, vs;
      for (const Vec& row : x) {
        Vec qkv = Linear(row, W(q + "attention.query_key_value.weight"),
                         &W(q + "attention.query_key_value.bias"), 3 * kVHidden);
        qs.push_back(Vec(qkv.begin(), qkv.begin() + kVHidden));
        ks.push_back(Vec(qkv.begin() + kVHidden, qkv.begin() + 2 * kVHidden));
        vs.push_back(Vec(qkv.begin() + 2 * kVHidden, qkv.end()));
      }
      Rows attn(n + 1, Vec(kVHidden));
      for (int h = 0; h < kVHeads; ++h) {
        Rows kh, vh;
        for (int j = 0; j <= n; ++j) {
          kh.push_back(Vec(ks[j].begin() + h * hd, ks[j].begin() + (h + 1) * hd));
          vh.push_back(Vec(vs[j].begin() + h * hd, vs[j].begin() + (h + 1) * hd));
        }
        for (int i = 0; i <= n; ++i) {
          Vec qh(qs[i].begin() + h * hd, qs[i].begin() + (h + 1) * hd);
          Vec o = Attend(qh, kh, vh, n + 1, 1.0 / std::sqrt(static_cast<double>(hd)));
          std::copy(o.begin(), o.end(), attn[i].begin() + h * hd);
        }
      }
      for (int i = 0; i <= n; ++i) {
        Vec o = Linear(attn[i], W(q + "attention.dense.weight"), &W(q + "attention.dense.bias"),
                       kVHidden);
        o = Ln(o, W(q + "input_layernorm.weight"), W(q + "input_layernorm.bias"), kVEps);
        for (int t = 0; t < kVHidden; ++t) x[i][t] += o[t];
        Vec m = Linear(x[i], W(q + "mlp.fc1.weight"), &W(q + "mlp.fc1.bias"), kVInter);
        for (double& e : m) e = Gelu(e);
        m = Linear(m, W(q + "mlp.fc2.weight"), &W(q + "mlp.fc2.bias"), kVHidden);
        m = Ln(m, W(q + "post_attention_layernorm.weight"), W(q + "post_attention_layernorm.bias"),
               kVEps);
        for (int t = 0; t < kVHidden; ++t) x[i][t] += m[t];
      }
    }
    // Drop CLS; 2x2 stride-2 conv over the grid (row y*g + x is grid cell (y, x)).
    const int mg = kGrid / 2;
    const Vec& cw = W(v + "conv.weight");
    const Vec& cb = W(v + "conv.bias");
    Rows out;
    out.push_back(W(v + "boi"));
    for (int oy = 0; oy < mg; ++oy) {
      for (int ox = 0; ox < mg; ++ox) {
        Vec t(kHidden);
        for (int o = 0; o < kHidden; ++o) {
          double s = cb[o];
          for (int c = 0; c < kVHidden; ++c)
            for (int ky = 0; ky < 2; ++ky)
              for (int kx = 0; kx < 2; ++kx)
                s += x[1 + (2 * oy + ky) * kGrid + 2 * ox + kx][c] *
                     cw[((o * kVHidden + c) * 2 + ky) * 2 + kx];
          t[o] = s;
        }
        t = Linear(t, W(v + "linear_proj.linear_proj.weight"), nullptr, kHidden);
        t = Ln(t, W(v + "linear_proj.norm1.weight"), W(v + "linear_proj.norm1.bias"), 1e-5);
        for (double& e : t) e = Gelu(e);
        Vec gate = Linear(t, W(v + "linear_proj.gate_proj.weight"), nullptr, kFfn);
        Vec up = Linear(t, W(v + "linear_proj.dense_h_to_4h.weight"), nullptr, kFfn);
        for (int i = 0; i < kFfn; ++i) gate[i] = Silu(gate[i]) * up[i];
        out.push_back(Linear(gate, W(v + "linear_proj.dense_4h_to_h.weight"), nullptr, kHidden));
      }
    }
    out.push_back(W(v + "eoi"));
    for (Vec& r : out)
      for (double& e : r) e /= kScaling;
    return out;
  }

  // Interleaved RoPE on the first half of one head.
  static void Rope(Vec* x, int position) {
    const int rot = kHeadDim / 2;
    const double base = 10000.0 * kRopeRatio;
    for (int j = 0; j < rot / 2; ++j) {
      const double a = position * std::pow(base, -2.0 * j / rot);
      const double x0 = (*x)[2 * j], x1 = (*x)[2 * j + 1];
      (*x)[2 * j] = x0 * std::cos(a) - x1 * std::sin(a);
      (*x)[2 * j + 1] = x1 * std::cos(a) + x0 * std::sin(a);
    }
  }

  // Full-sequence causal decoder: embedding rows + positions -> logits of every row.
  Rows Decoder(Rows x, const std::vector<int>& positions) const {
    const std::string t = "transformer.";
    const size_t n = x.size();
    for (int l = 0; l < kLayers; ++l) {
      const std::string q = absl::StrCat(t, "encoder.layers.", l, ".");
      std::vector<Rows> qh(kHeads), kh(kGroups), vh(kGroups);
      for (size_t i = 0; i < n; ++i) {
        Vec h = Rms(x[i], W(q + "input_layernorm.weight"));
        Vec qkv = Linear(h, W(q + "self_attention.query_key_value.weight"),
                         &W(q + "self_attention.query_key_value.bias"),
                         (kHeads + 2 * kGroups) * kHeadDim);
        for (int a = 0; a < kHeads; ++a) {
          Vec head(qkv.begin() + a * kHeadDim, qkv.begin() + (a + 1) * kHeadDim);
          Rope(&head, positions[i]);
          qh[a].push_back(head);
        }
        for (int g = 0; g < kGroups; ++g) {
          const int ko = kHeads * kHeadDim + g * kHeadDim;
          const int vo = (kHeads + kGroups) * kHeadDim + g * kHeadDim;
          Vec k(qkv.begin() + ko, qkv.begin() + ko + kHeadDim);
          Rope(&k, positions[i]);
          kh[g].push_back(k);
          vh[g].push_back(Vec(qkv.begin() + vo, qkv.begin() + vo + kHeadDim));
        }
      }
      for (size_t i = 0; i < n; ++i) {
        Vec attn;
        for (int a = 0; a < kHeads; ++a) {
          const int g = a / (kHeads / kGroups);
          Vec o = Attend(qh[a][i], kh[g], vh[g], i + 1, 1.0 / std::sqrt(1.0 * kHeadDim));
          attn.insert(attn.end(), o.begin(), o.end());
        }
        Vec o = Linear(attn, W(q + "self_attention.dense.weight"), nullptr, kHidden);
        for (int e = 0; e < kHidden; ++e) x[i][e] += o[e];
        Vec h = Rms(x[i], W(q + "post_attention_layernorm.weight"));
        Vec u = Linear(h, W(q + "mlp.dense_h_to_4h.weight"), nullptr, 2 * kFfn);
        Vec act(kFfn);
        for (int e = 0; e < kFfn; ++e) act[e] = Silu(u[e]) * u[kFfn + e];
        o = Linear(act, W(q + "mlp.dense_4h_to_h.weight"), nullptr, kHidden);
        for (int e = 0; e < kHidden; ++e) x[i][e] += o[e];
      }
    }
    Rows logits;
    for (size_t i = 0; i < n; ++i) {
      logits.push_back(Linear(Rms(x[i], W(t + "encoder.final_layernorm.weight")),
                              W(t + "output_layer.weight"), nullptr, kVocab));
    }
    return logits;
  }

  Vec Embedding(int id) const {
    const Vec& e = W("transformer.embedding.word_embeddings.weight");
    return Vec(e.begin() + id * kHidden, e.begin() + (id + 1) * kHidden);
  }

  // Greedy ids and the logits that chose them, recomputing the full sequence each step.
  void Greedy(Rows x, std::vector<int> positions, int steps, std::vector<int>* ids,
              Rows* step_logits) const {
    for (int s = 0; s < steps; ++s) {
      Vec last = Decoder(x, positions).back();
      const int next = static_cast<int>(std::max_element(last.begin(), last.end()) - last.begin());
      ids->push_back(next);
      step_logits->push_back(last);
      x.push_back(Embedding(next));
      positions.push_back(positions.back() + 1);
    }
  }

 private:
  const WeightMap* w_;
};

// ---------------------------------------------------------------- the test

double MaxAbs(const Rows& r) {
  double m = 0;
  for (const Vec& v : r)
    for (double e : v) m = std::max(m, std::fabs(e));
  return m;
}

// max |ours - ref| over rows, ours a host f32 tensor [rows, cols].
double MaxErr(const Tensor& ours, const Rows& ref) {
  if (ours.dim(0) != static_cast<int64_t>(ref.size())) return INFINITY;
  double m = 0;
  for (size_t r = 0; r < ref.size(); ++r) {
    if (ours.dim(1) != static_cast<int64_t>(ref[r].size())) return INFINITY;
    for (size_t c = 0; c < ref[r].size(); ++c) {
      const double d = std::fabs(ours.data<float>()[r * ref[r].size() + c] - ref[r][c]);
      if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
    }
  }
  return m;
}

class ModelReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = testing::RandomGlm4vWeights(ConfigJson(), 4242);
    ASSERT_TRUE(w.ok()) << w.status();
    weights_ = new WeightMap(std::move(*w));
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = new std::string(absl::StrCat(tmp ? tmp : "/tmp", "/random-glm4v-", getpid()));
    ASSERT_TRUE(testing::WriteCheckpoint(*dir_, ConfigJson(), *weights_).ok());
    auto backend = GetBackend("cpu");
    ASSERT_TRUE(backend.ok());
    auto model = LoadGlm4vModel(*dir_, *backend);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new Glm4vModel(std::move(*model));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete weights_;
    delete dir_;
  }

  static WeightMap* weights_;
  static std::string* dir_;
  static Glm4vModel* model_;
};
WeightMap* ModelReferenceTest::weights_ = nullptr;
std::string* ModelReferenceTest::dir_ = nullptr;
Glm4vModel* ModelReferenceTest::model_ = nullptr;

constexpr double kRel = 1e-4;  // the golden CPU tolerance

TEST_F(ModelReferenceTest, ConfigIsNotTheGoldenOne) {
  const ModelConfig& c = model_->config;
  EXPECT_EQ(c.multi_query_group_num, 1);
  EXPECT_EQ(c.kv_channels, 8);
  EXPECT_NE(c.hidden_size, c.q_size());
  EXPECT_EQ(c.vision.feature_rows(), 6);
}

TEST_F(ModelReferenceTest, TextPromptLogitsAndGreedyMatchNaiveReference) {
  Reference ref(weights_);
  std::vector<int32_t> ids = {504, 505, 503, 7, 300, 12, 499, 88, 1, 0, 256, 511, 42, 506};
  std::vector<int> positions;
  Rows x;
  for (size_t i = 0; i < ids.size(); ++i) {
    x.push_back(ref.Embedding(ids[i]));
    positions.push_back(static_cast<int>(i));
  }
  Rows want = ref.Decoder(x, positions);
  std::vector<int> want_ids;
  Rows want_steps;
  ref.Greedy(x, positions, 6, &want_ids, &want_steps);

  GreedyOptions options;
  options.max_new_tokens = 6;
  options.return_prompt_logits = true;
  options.block_size = 4;  // several blocks
  auto got = GenerateGreedy(*model_->decoder, TextPrompt(ids), Tensor(), options);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_LE(MaxErr(got->prompt_logits, want), kRel * MaxAbs(want));
  EXPECT_EQ(std::vector<int>(got->ids.begin(), got->ids.end()), want_ids);
  EXPECT_LE(MaxErr(got->step_logits, want_steps), kRel * MaxAbs(want_steps));
}

TEST_F(ModelReferenceTest, BatchedVisionAndSplicedPromptMatchNaiveReference) {
  Reference ref(weights_);
  std::vector<float> pixels = [] {
    std::vector<float> p(2 * 3 * kImage * kImage);
    for (size_t i = 0; i < p.size(); ++i) p[i] = std::sin(0.37 * i) * 1.7f + 0.01f * (i % 13);
    return p;
  }();
  Tensor input = Tensor::FromF32({2, 3, kImage, kImage}, pixels);
  auto features = model_->vision->Forward(input);
  ASSERT_TRUE(features.ok()) << features.status();
  ASSERT_EQ(features->shape(), (Shape{2, 6, kHidden}));
  const int64_t per_image = 3 * kImage * kImage;
  std::vector<Rows> want_features;
  for (int b = 0; b < 2; ++b) {
    want_features.push_back(ref.Vision(
        std::vector<float>(pixels.begin() + b * per_image, pixels.begin() + (b + 1) * per_image)));
    Tensor mine = features->SliceRows(b, b + 1).Reshape({6, kHidden}).value();
    EXPECT_LE(MaxErr(mine, want_features[b]), kRel * MaxAbs(want_features[b])) << "image " << b;
  }

  // Prompt with image 1 spliced in; positions by the DESIGN.md rule, built independently.
  std::vector<int32_t> ids = {504, 505, 503, 10, kBoi, kEot, kEoi, 77, 123, 9, 506};
  Tensor image1 = features->SliceRows(1, 2).Reshape({6, kHidden}).value();
  auto spliced = SpliceImages(ids, {6}, model_->config);
  ASSERT_TRUE(spliced.ok()) << spliced.status();
  Rows x;
  std::vector<int> positions;
  for (int i = 0; i < 4; ++i) {
    x.push_back(ref.Embedding(ids[i]));
    positions.push_back(i);
  }
  for (int r = 0; r < 6; ++r) {
    x.push_back(want_features[1][r]);
    positions.push_back(r == 0 ? 4 : r == 5 ? 6 : 5);
  }
  for (int i = 7; i < static_cast<int>(ids.size()); ++i) {
    x.push_back(ref.Embedding(ids[i]));
    positions.push_back(i);
  }
  EXPECT_EQ(std::vector<int>(spliced->positions.begin(), spliced->positions.end()), positions);
  EXPECT_EQ(spliced->next_position, 11);

  Rows want = ref.Decoder(x, positions);
  std::vector<int> want_ids;
  Rows want_steps;
  ref.Greedy(x, positions, 5, &want_ids, &want_steps);
  GreedyOptions options;
  options.max_new_tokens = 5;
  options.return_prompt_logits = true;
  options.block_size = 3;
  auto got = GenerateGreedy(*model_->decoder, *spliced, image1, options);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_LE(MaxErr(got->prompt_logits, want), kRel * MaxAbs(want));
  EXPECT_EQ(std::vector<int>(got->ids.begin(), got->ids.end()), want_ids);
  EXPECT_LE(MaxErr(got->step_logits, want_steps), kRel * MaxAbs(want_steps));
}

}  // namespace
}  // namespace glm4v
