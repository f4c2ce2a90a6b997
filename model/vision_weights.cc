#include "model/vision_weights.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/weight_slices.h"

namespace glm4v {
namespace {

// Reads `name` (stored shape checked) as `dtype`, views it as `as_shape` (same element count)
// and uploads it.
absl::StatusOr<Tensor> Load(SliceReader& read, Backend* backend, const std::string& name,
                            const Shape& shape, DType dtype, Shape as_shape = {}) {
  ASSIGN_OR_RETURN(Tensor host, read.All(name, shape, dtype));
  if (!as_shape.empty()) {
    ASSIGN_OR_RETURN(host, host.Reshape(std::move(as_shape)));
  }
  return backend->Upload(host, dtype);
}

// As Load for a Linear (or flattened conv) weight: quantized as `options` ask.
absl::StatusOr<LinearWeight> LoadMatrix(SliceReader& read, Backend* backend,
                                        const std::string& name, const Shape& shape, DType dtype,
                                        const WeightLoadOptions& options, Shape as_shape = {}) {
  ASSIGN_OR_RETURN(Tensor host, read.All(name, shape, dtype));
  if (!as_shape.empty()) {
    ASSIGN_OR_RETURN(host, host.Reshape(std::move(as_shape)));
  }
  absl::StatusOr<LinearWeight> w = UploadMatrix(backend, host, options, dtype);
  // Quantized: the mapped float bytes need not stay resident.
  if (w.ok() && w->quantized()) read.checkpoint().ReleasePages(name);
  return w;
}

}  // namespace

absl::StatusOr<VisionWeights> LoadVisionWeights(const Checkpoint& checkpoint,
                                                const ModelConfig& config, Backend* backend,
                                                const WeightLoadOptions& options) {
  ASSIGN_OR_RETURN(const TensorInfo patch_info,
                   checkpoint.Info("transformer.vision.patch_embedding.proj.weight"));
  ASSIGN_OR_RETURN(const WeightDTypes dtypes,
                   ResolveWeightDTypes(options, *backend, patch_info.dtype));
  const DType mat = dtypes.matrix, act = dtypes.activation;
  SliceReader read(checkpoint);
  const VisionConfig& vc = config.vision;
  if (vc.patch_size <= 0 || vc.image_size % vc.patch_size != 0 || vc.grid() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vision image_size ", vc.image_size, " must be an even multiple of patch_size ",
        vc.patch_size));
  }
  if (vc.num_positions != vc.num_patches() + 1) {
    return absl::InvalidArgumentError(absl::StrCat("vision num_positions ", vc.num_positions,
                                                   " != patches + 1 = ", vc.num_patches() + 1));
  }
  if (vc.num_heads <= 0 || vc.hidden_size % vc.num_heads != 0) {
    return absl::InvalidArgumentError("vision hidden_size not divisible by num_heads");
  }
  if (vc.hidden_act != "gelu") {
    return absl::UnimplementedError(absl::StrCat("vision hidden_act ", vc.hidden_act));
  }
  const int64_t vh = vc.hidden_size, inter = vc.intermediate_size, c = vc.in_channels;
  const int64_t p = vc.patch_size, h = config.hidden_size, ffn = config.ffn_hidden_size;
  const std::string v = "transformer.vision.";
  VisionWeights w;
  ASSIGN_OR_RETURN(w.patch_weight, LoadMatrix(read, backend, v + "patch_embedding.proj.weight",
                                              {vh, c, p, p}, mat, options, {vh, c * p * p}));
  ASSIGN_OR_RETURN(w.patch_bias, Load(read, backend, v + "patch_embedding.proj.bias", {vh}, act));
  ASSIGN_OR_RETURN(w.cls_embedding,
                   Load(read, backend, v + "patch_embedding.cls_embedding", {1, vh}, act));
  ASSIGN_OR_RETURN(w.position_embedding,
                   Load(read, backend, v + "patch_embedding.position_embedding.weight",
                        {vc.num_patches() + 1, vh}, act));
  for (int l = 0; l < vc.num_hidden_layers; ++l) {
    const std::string q = absl::StrCat(v, "transformer.layers.", l, ".");
    VisionLayerWeights layer;
    ASSIGN_OR_RETURN(layer.qkv_weight,
                     LoadMatrix(read, backend, q + "attention.query_key_value.weight",
                                {3 * vh, vh}, mat, options));
    ASSIGN_OR_RETURN(layer.qkv_bias,
                     Load(read, backend, q + "attention.query_key_value.bias", {3 * vh}, act));
    ASSIGN_OR_RETURN(layer.dense_weight,
                     LoadMatrix(read, backend, q + "attention.dense.weight", {vh, vh}, mat, options));
    ASSIGN_OR_RETURN(layer.dense_bias, Load(read, backend, q + "attention.dense.bias", {vh}, act));
    ASSIGN_OR_RETURN(layer.ln1_weight,
                     Load(read, backend, q + "input_layernorm.weight", {vh}, act));
    ASSIGN_OR_RETURN(layer.ln1_bias, Load(read, backend, q + "input_layernorm.bias", {vh}, act));
    ASSIGN_OR_RETURN(layer.fc1_weight,
                     LoadMatrix(read, backend, q + "mlp.fc1.weight", {inter, vh}, mat, options));
    ASSIGN_OR_RETURN(layer.fc1_bias, Load(read, backend, q + "mlp.fc1.bias", {inter}, act));
    ASSIGN_OR_RETURN(layer.fc2_weight,
                     LoadMatrix(read, backend, q + "mlp.fc2.weight", {vh, inter}, mat, options));
    ASSIGN_OR_RETURN(layer.fc2_bias, Load(read, backend, q + "mlp.fc2.bias", {vh}, act));
    ASSIGN_OR_RETURN(layer.ln2_weight,
                     Load(read, backend, q + "post_attention_layernorm.weight", {vh}, act));
    ASSIGN_OR_RETURN(layer.ln2_bias,
                     Load(read, backend, q + "post_attention_layernorm.bias", {vh}, act));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.conv_weight,
                   LoadMatrix(read, backend, v + "conv.weight", {h, vh, 2, 2}, mat, options,
                              {h, vh * 4}));
  ASSIGN_OR_RETURN(w.conv_bias, Load(read, backend, v + "conv.bias", {h}, act));
  ASSIGN_OR_RETURN(w.proj_weight,
                   LoadMatrix(read, backend, v + "linear_proj.linear_proj.weight", {h, h}, mat, options));
  ASSIGN_OR_RETURN(w.proj_norm_weight,
                   Load(read, backend, v + "linear_proj.norm1.weight", {h}, act));
  ASSIGN_OR_RETURN(w.proj_norm_bias, Load(read, backend, v + "linear_proj.norm1.bias", {h}, act));
  {
    ASSIGN_OR_RETURN(Tensor gate, read.All(v + "linear_proj.gate_proj.weight", {ffn, h}, mat));
    ASSIGN_OR_RETURN(Tensor up, read.All(v + "linear_proj.dense_h_to_4h.weight", {ffn, h}, mat));
    Tensor stacked = Tensor::Empty(mat, {2 * ffn, h});
    std::memcpy(stacked.raw_data(), gate.raw_data(), gate.nbytes());
    std::memcpy(static_cast<char*>(stacked.raw_data()) + gate.nbytes(), up.raw_data(), up.nbytes());
    ASSIGN_OR_RETURN(w.gate_up_weight, UploadMatrix(backend, stacked, options, mat));
    if (w.gate_up_weight.quantized()) {
      checkpoint.ReleasePages(v + "linear_proj.gate_proj.weight");
      checkpoint.ReleasePages(v + "linear_proj.dense_h_to_4h.weight");
    }
  }
  ASSIGN_OR_RETURN(w.down_weight,
                   LoadMatrix(read, backend, v + "linear_proj.dense_4h_to_h.weight", {h, ffn}, mat,
                              options));
  ASSIGN_OR_RETURN(w.boi, Load(read, backend, v + "boi", {1, 1, h}, act, {1, h}));
  ASSIGN_OR_RETURN(w.eoi, Load(read, backend, v + "eoi", {1, 1, h}, act, {1, h}));
  return w;
}

int64_t VisionWeights::HeldBytes() const {
  auto bytes = [](const Tensor& t) -> int64_t { return t.defined() ? t.nbytes() : 0; };
  int64_t total = 0;
  for (const Tensor* t : {&patch_bias, &cls_embedding, &position_embedding, &conv_bias,
                          &proj_norm_weight, &proj_norm_bias, &boi, &eoi}) {
    total += bytes(*t);
  }
  for (const LinearWeight* m :
       {&patch_weight, &conv_weight, &proj_weight, &gate_up_weight, &down_weight}) {
    total += m->nbytes();
  }
  for (const VisionLayerWeights& l : layers) {
    for (const Tensor* t : {&l.qkv_bias, &l.dense_bias, &l.ln1_weight, &l.ln1_bias, &l.fc1_bias,
                            &l.fc2_bias, &l.ln2_weight, &l.ln2_bias}) {
      total += bytes(*t);
    }
    for (const LinearWeight* m : {&l.qkv_weight, &l.dense_weight, &l.fc1_weight, &l.fc2_weight}) {
      total += m->nbytes();
    }
  }
  return total;
}

}  // namespace glm4v

