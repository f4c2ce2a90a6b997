#include "model/vision_tower.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace glm4v {
namespace {
// THUDM's GLU projector uses nn.LayerNorm's default eps; it is not in config.json.
constexpr float kProjectorNormEps = 1e-5f;
}  // namespace

absl::StatusOr<std::unique_ptr<VisionTower>> VisionTower::Load(const Checkpoint& checkpoint,
                                                               const ModelConfig& config,
                                                               Backend* backend,
                                                               const WeightLoadOptions& options) {
  ASSIGN_OR_RETURN(VisionWeights weights, LoadVisionWeights(checkpoint, config, backend, options));
  return std::make_unique<VisionTower>(config, std::move(weights), backend);
}

VisionTower::VisionTower(const ModelConfig& config, VisionWeights weights, Backend* backend)
    : config_(config), weights_(std::move(weights)), backend_(backend) {}

absl::Status VisionTower::RunLayer(const VisionLayerWeights& layer, int images,
                                   Tensor* x) const {
  const VisionConfig& vc = config_.vision;
  const int64_t rows = x->dim(0), vh = vc.hidden_size;
  const float eps = static_cast<float>(vc.layer_norm_eps);
  Backend& be = *backend_;
  const DType act = be.activation_dtype();

  // x = x + LN1(Attn(x))
  Tensor qkv = be.Empty(act, {rows, 3 * vh});
  RETURN_IF_ERROR(be.Linear(*x, layer.qkv_weight, &layer.qkv_bias, &qkv));
  Tensor q = be.Empty(act, {rows, vh}), k = be.Empty(act, {rows, vh});
  Tensor v = be.Empty(act, {rows, vh});
  Tensor* parts[] = {&q, &k, &v};
  RETURN_IF_ERROR(be.SplitColumns(qkv, parts));
  Tensor attn = be.Empty(act, {rows, vh});
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(vc.head_dim())));
  RETURN_IF_ERROR(be.Attention(q, k, v, images, vc.num_heads, vc.num_heads, /*causal=*/false,
                               scale, &attn));
  Tensor out = be.Empty(act, {rows, vh});
  RETURN_IF_ERROR(be.Linear(attn, layer.dense_weight, &layer.dense_bias, &out));
  Tensor normed = be.Empty(act, {rows, vh});
  RETURN_IF_ERROR(be.LayerNorm(out, layer.ln1_weight, layer.ln1_bias, eps, &normed));
  RETURN_IF_ERROR(be.AddInPlace(normed, x));

  // x = x + LN2(MLP(x))
  Tensor hidden = be.Empty(act, {rows, vc.intermediate_size});
  RETURN_IF_ERROR(be.Linear(*x, layer.fc1_weight, &layer.fc1_bias, &hidden));
  RETURN_IF_ERROR(be.GeluInPlace(&hidden));
  RETURN_IF_ERROR(be.Linear(hidden, layer.fc2_weight, &layer.fc2_bias, &out));
  RETURN_IF_ERROR(be.LayerNorm(out, layer.ln2_weight, layer.ln2_bias, eps, &normed));
  return be.AddInPlace(normed, x);
}

absl::StatusOr<Tensor> VisionTower::MergeAndProject(const Tensor& patches, int images) const {
  const VisionConfig& vc = config_.vision;
  const int64_t g = vc.grid(), vh = vc.hidden_size, h = config_.hidden_size;
  const int64_t merged_rows = static_cast<int64_t>(images) * vc.image_tokens();
  Backend& be = *backend_;
  const DType act = be.activation_dtype();
  // Patch rows are row-major over the grid, i.e. an [images, g, g, vh] channels-last image;
  // the 2x2 stride-2 conv is then a GEMM over its 2x2 patches.
  ASSIGN_OR_RETURN(Tensor grid, patches.Reshape({images, g, g, vh}));
  Tensor cols = be.Empty(act, {merged_rows, vh * 4});
  RETURN_IF_ERROR(be.PatchIm2Col(grid, ImageLayout::kChannelsLast, 2, &cols));
  Tensor merged = be.Empty(act, {merged_rows, h});
  RETURN_IF_ERROR(be.Linear(cols, weights_.conv_weight, &weights_.conv_bias, &merged));

  // GLU projector: x = gelu(LN(W x)); out = W_down(silu(W_gate x) * W_up x).
  Tensor projected = be.Empty(act, {merged_rows, h});
  RETURN_IF_ERROR(be.Linear(merged, weights_.proj_weight, nullptr, &projected));
  RETURN_IF_ERROR(be.LayerNorm(projected, weights_.proj_norm_weight, weights_.proj_norm_bias,
                               kProjectorNormEps, &merged));
  RETURN_IF_ERROR(be.GeluInPlace(&merged));
  const int64_t ffn = config_.ffn_hidden_size;
  Tensor gate_up = be.Empty(act, {merged_rows, 2 * ffn});
  RETURN_IF_ERROR(be.Linear(merged, weights_.gate_up_weight, nullptr, &gate_up));
  Tensor glu = be.Empty(act, {merged_rows, ffn});
  RETURN_IF_ERROR(be.SiluAndMul(gate_up, &glu));
  RETURN_IF_ERROR(be.Linear(glu, weights_.down_weight, nullptr, &projected));
  return projected;
}

absl::StatusOr<Tensor> VisionTower::Forward(const Tensor& pixels_in) const {
  const VisionConfig& vc = config_.vision;
  if (!pixels_in.defined() || pixels_in.ndim() != 4 || pixels_in.dim(0) < 1 ||
      pixels_in.dim(1) != vc.in_channels || pixels_in.dim(2) != vc.image_size ||
      pixels_in.dim(3) != vc.image_size || pixels_in.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vision input must be f32 [images, ", vc.in_channels, ", ", vc.image_size, ", ",
        vc.image_size, "], got ", pixels_in.defined() ? pixels_in.DebugString() : "undefined"));
  }
  Backend& be = *backend_;
  const DType act = be.activation_dtype();
  ASSIGN_OR_RETURN(Tensor pixels, be.Upload(pixels_in.is_contiguous() ? pixels_in
                                                                      : pixels_in.Clone(),
                                            act));
  const int images = static_cast<int>(pixels.dim(0));
  const int64_t n = vc.num_patches(), vh = vc.hidden_size, c = vc.in_channels;
  const int64_t p = vc.patch_size;

  // Patch embedding (conv with kernel = stride = patch) as im2col + GEMM.
  Tensor cols = be.Empty(act, {images * n, c * p * p});
  RETURN_IF_ERROR(be.PatchIm2Col(pixels, ImageLayout::kChannelsFirst, vc.patch_size, &cols));
  Tensor patches = be.Empty(act, {images * n, vh});
  RETURN_IF_ERROR(be.Linear(cols, weights_.patch_weight, &weights_.patch_bias, &patches));

  // Per image: [CLS; patches] + position embedding (row 0 is the CLS position).
  Tensor x = be.Empty(act, {images * (n + 1), vh});
  for (int b = 0; b < images; ++b) {
    RETURN_IF_ERROR(be.CopyRows(weights_.cls_embedding, 0, 1, &x, b * (n + 1)));
    RETURN_IF_ERROR(be.CopyRows(patches, b * n, n, &x, b * (n + 1) + 1));
    Tensor image_rows = x.SliceRows(b * (n + 1), (b + 1) * (n + 1));
    RETURN_IF_ERROR(be.AddInPlace(weights_.position_embedding, &image_rows));
  }
  for (const VisionLayerWeights& layer : weights_.layers) {
    RETURN_IF_ERROR(RunLayer(layer, images, &x));
  }

  // Drop CLS, merge 2x2 patches, project to the decoder width.
  for (int b = 0; b < images; ++b) {
    RETURN_IF_ERROR(be.CopyRows(x, b * (n + 1) + 1, n, &patches, b * n));
  }
  ASSIGN_OR_RETURN(Tensor tokens, MergeAndProject(patches, images));

  // [boi; tokens; eoi] per image, then / scaling_factor.
  const int64_t m = vc.image_tokens(), rows = vc.feature_rows(), h = config_.hidden_size;
  Tensor features = be.Empty(act, {images * rows, h});
  for (int b = 0; b < images; ++b) {
    RETURN_IF_ERROR(be.CopyRows(weights_.boi, 0, 1, &features, b * rows));
    RETURN_IF_ERROR(be.CopyRows(tokens, b * m, m, &features, b * rows + 1));
    RETURN_IF_ERROR(be.CopyRows(weights_.eoi, 0, 1, &features, b * rows + rows - 1));
  }
  RETURN_IF_ERROR(be.ScaleInPlace(static_cast<float>(1.0 / vc.scaling_factor), &features));
  return features.Reshape({images, rows, h});
}

}  // namespace glm4v
