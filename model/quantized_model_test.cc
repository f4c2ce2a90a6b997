// int8 / int4 weights end to end on the tiny checkpoint (tests/data/tiny-glm4v): every Linear of
// the decoder, the vision tower and the projector quantized at load, run by the quantized
// kernels, gives the vision features, prompt logits and greedy ids of the same model in float
// with the dequantized weights (WeightLoadOptions::simulate_quantization) to the CPU fp32
// golden tolerance (1e-4 x max). So what quantization costs in accuracy is the quantization
// itself (measured by //tools/accuracy:quantization_accuracy and the golden checker), not the
// kernels. Also: the memory it holds, the LM head kept in float by default, and a TP = 2 slice.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backends.h"
#include "kernels/cpu/matmul_quantized_vnni.h"
#include "model/decoder_weights.h"
#include "model/glm4v_model.h"
#include "model/greedy_generate.h"
#include "model/image_splice.h"
#include "model/weight_options.h"

namespace glm4v {
namespace {

constexpr char kModel[] = "tests/data/tiny-glm4v/model";

struct Outputs {
  Tensor features;
  GreedyResult greedy;
};

Outputs RunTinyModel(const WeightLoadOptions& weights) {
  Backend* backend = GetBackend("cpu").value();
  auto model = LoadGlm4vModel(kModel, backend, /*load_vision=*/true, weights);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  const auto& vc = model->config.vision;
  std::vector<float> pixels(3 * vc.image_size * vc.image_size);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::sin(0.37f * static_cast<float>(i));
  auto batch = model->vision->Forward(
      Tensor::FromF32({1, 3, vc.image_size, vc.image_size}, pixels));
  EXPECT_TRUE(batch.ok()) << batch.status();
  Outputs out;
  out.features = batch->Reshape({-1, model->config.hidden_size}).value();
  const std::vector<int32_t> ids = {1004, 1005, 1003, 10, 1001, 1000, 1002, 77, 300, 1006};
  auto prompt = SpliceImages(ids, {static_cast<int32_t>(out.features.dim(0))}, model->config);
  EXPECT_TRUE(prompt.ok()) << prompt.status();
  GreedyOptions options;
  options.max_new_tokens = 8;
  options.return_prompt_logits = true;
  auto greedy = GenerateGreedy(*model->decoder, *prompt, out.features, options);
  EXPECT_TRUE(greedy.ok()) << greedy.status();
  out.greedy = *greedy;
  return out;
}

void ExpectClose(const Tensor& ours, const Tensor& reference, const char* what) {
  ASSERT_EQ(ours.numel(), reference.numel()) << what;
  const Tensor a = ours.ToF32(), b = reference.ToF32();
  float max_ref = 0, max_err = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    max_ref = std::max(max_ref, std::fabs(b.data<float>()[i]));
    max_err = std::max(max_err, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
  }
  EXPECT_LE(max_err, 1e-4f * max_ref) << what;
}

class QuantizedModelTest : public ::testing::TestWithParam<WeightFormat> {};

// Row cosines of two [rows, cols] results.
double MinRowCosine(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = a_in.ToF32(), b = b_in.ToF32();
  const int64_t cols = b.shape().back(), rows = b.numel() / cols;
  double worst = 1.0;
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double x = a.data<float>()[r * cols + c], y = b.data<float>()[r * cols + c];
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
    worst = std::min(worst, dot / std::sqrt(aa * bb));
  }
  return worst;
}

// Products of at most cpu::kVnniMaxRows rows (decode steps, the projector's few rows) round the
// activations to int8 by default (kernels/cpu/matmul_quantized_vnni.h); switched off here so
// the quantized kernels can be held to the float model's tolerance.
class ExactActivations {
 public:
  ExactActivations() { cpu::SetInt8ActivationProducts(false); }
  ~ExactActivations() { cpu::SetInt8ActivationProducts(true); }
};

TEST_P(QuantizedModelTest, MatchesTheFloatModelWithTheDequantizedWeights) {
  ExactActivations exact;
  WeightLoadOptions quantized;
  quantized.quantization = GetParam();
  WeightLoadOptions simulated = quantized;
  simulated.simulate_quantization = true;
  const Outputs q = RunTinyModel(quantized), f = RunTinyModel(simulated);
  ExpectClose(q.features, f.features, "vision features");
  ExpectClose(q.greedy.prompt_logits, f.greedy.prompt_logits, "prompt logits");
  ExpectClose(q.greedy.step_logits, f.greedy.step_logits, "step logits");
  EXPECT_EQ(q.greedy.ids, f.greedy.ids);
  // And quantization did change something (the comparison is not float against float).
  const Outputs plain = RunTinyModel(WeightLoadOptions{});
  float diff = 0;
  for (int64_t i = 0; i < plain.features.numel(); ++i) {
    diff = std::max(diff, std::fabs(plain.features.data<float>()[i] -
                                    q.features.data<float>()[i]));
  }
  EXPECT_GT(diff, 0.0f);
}

// With the int8-activation decode path on (where the CPU has VNNI): close to the float model
// with the dequantized weights, the difference being the activations' rounding only.
TEST_P(QuantizedModelTest, Int8ActivationPathStaysCloseToTheFloatModel) {
  const bool integer_path = GetParam() == WeightFormat::kInt8
                                ? cpu::Int8ActivationProductsEnabled()
                                : GetParam() == WeightFormat::kInt4 &&
                                      cpu::Int4ActivationProductsEnabled();
  if (!integer_path) GTEST_SKIP() << "no integer-dot path for these weights on this CPU";
  WeightLoadOptions quantized;
  quantized.quantization = GetParam();
  WeightLoadOptions simulated = quantized;
  simulated.simulate_quantization = true;
  const Outputs q = RunTinyModel(quantized), f = RunTinyModel(simulated);
  const double features = MinRowCosine(q.features, f.features);
  const double prompt = MinRowCosine(q.greedy.prompt_logits, f.greedy.prompt_logits);
  std::printf("%s with int8 activations: features min row cosine %.6f, prompt logits %.6f\n",
              WeightFormatName(GetParam()).c_str(), features, prompt);
  EXPECT_GE(features, 0.999);
  EXPECT_GE(prompt, 0.99);
  // The argmax of every prompt row whose float top-2 margin exceeds 0.05 (the README's rule).
  const Tensor& a = q.greedy.prompt_logits;
  const Tensor& b = f.greedy.prompt_logits;
  const int64_t vocab = b.dim(1);
  int checked = 0;
  for (int64_t r = 0; r < b.dim(0); ++r) {
    const float* fr = b.data<float>() + r * vocab;
    const float* qr = a.data<float>() + r * vocab;
    const int64_t best = std::max_element(fr, fr + vocab) - fr;
    float second = -INFINITY;
    for (int64_t c = 0; c < vocab; ++c) {
      if (c != best) second = std::max(second, fr[c]);
    }
    if (fr[best] - second <= 0.05f) continue;
    ++checked;
    EXPECT_EQ(std::max_element(qr, qr + vocab) - qr, best) << "prompt row " << r;
  }
  EXPECT_GT(checked, 0);
}

TEST_P(QuantizedModelTest, HoldsFewerBytesAndKeepsTheLmHeadInFloat) {
  Backend* backend = GetBackend("cpu").value();
  auto checkpoint = Checkpoint::Open(kModel);
  ASSERT_TRUE(checkpoint.ok());
  auto config = LoadModelConfig(kModel);
  ASSERT_TRUE(config.ok());
  auto plain = LoadDecoderWeights(*checkpoint, *config, backend);
  WeightLoadOptions options;
  options.quantization = GetParam();
  auto q = LoadDecoderWeights(*checkpoint, *config, backend, options);
  ASSERT_TRUE(plain.ok() && q.ok());
  EXPECT_EQ(q->layers[0].h_to_4h_weight.format, GetParam());
  EXPECT_FALSE(q->output_layer.quantized());
  const int64_t matrix_bytes = plain->layers[0].h_to_4h_weight.nbytes();
  EXPECT_LT(q->layers[0].h_to_4h_weight.nbytes(),
            matrix_bytes * (GetParam() == WeightFormat::kInt4 ? 4 : 6) / 10);
  EXPECT_LT(q->HeldBytes(), plain->HeldBytes());
  options.quantize_output_layer = true;
  auto all = LoadDecoderWeights(*checkpoint, *config, backend, options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->output_layer.format, GetParam());
}

// Tensor parallelism: each rank quantizes its own slice; a row-parallel slice (input columns)
// gets its own scales, a column-parallel one (output rows) the full rows' scales.
TEST_P(QuantizedModelTest, EachTensorParallelRankQuantizesItsSlice) {
  Backend* backend = GetBackend("cpu").value();
  auto checkpoint = Checkpoint::Open(kModel);
  auto config = LoadModelConfig(kModel);
  ASSERT_TRUE(checkpoint.ok() && config.ok());
  WeightLoadOptions options;
  options.quantization = GetParam();
  auto whole = LoadDecoderWeights(*checkpoint, *config, backend, options);
  ASSERT_TRUE(whole.ok());
  for (int rank = 0; rank < 2; ++rank) {
    auto shard = PlanShard(*config, rank, 2);
    ASSERT_TRUE(shard.ok());
    auto part = LoadDecoderWeights(*checkpoint, *config, backend, *shard, options);
    ASSERT_TRUE(part.ok()) << part.status();
    const LinearWeight& up = part->layers[0].h_to_4h_weight;
    const LinearWeight& down = part->layers[0].four_h_to_h_weight;
    EXPECT_EQ(up.out_features(), 2 * shard->ffn);
    EXPECT_EQ(up.in_features(), config->hidden_size);
    EXPECT_EQ(down.in_features(), shard->ffn);
    // The gate rows of this rank are rows [first_ffn, first_ffn + ffn) of the whole matrix.
    const Tensor a = DequantizeLinearWeight(up);
    const Tensor b = DequantizeLinearWeight(whole->layers[0].h_to_4h_weight);
    const int64_t hidden = config->hidden_size;
    for (int64_t t = 0; t < hidden; ++t) {
      ASSERT_EQ(a.data<float>()[t], b.data<float>()[shard->first_ffn * hidden + t]) << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QuantizedModelTest,
                         ::testing::Values(WeightFormat::kInt8, WeightFormat::kInt4,
                                           WeightFormat::kFp8),
                         [](const ::testing::TestParamInfo<WeightFormat>& info) {
                           return WeightFormatName(info.param);
                         });

}  // namespace
}  // namespace glm4v
