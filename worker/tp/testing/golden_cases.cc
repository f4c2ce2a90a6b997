#include "worker/tp/testing/golden_cases.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "model/glm4v_model.h"
#include "nlohmann/json.hpp"

namespace glm4v::worker::tp::testing {

absl::StatusOr<std::vector<GoldenCase>> LoadGoldenCases() {
  std::ifstream in(absl::StrCat(kGoldenDir, "/golden.json"));
  if (!in) return absl::NotFoundError("golden.json not found");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json spec = nlohmann::json::parse(text.str(), nullptr, false);
  if (spec.is_discarded()) return absl::InvalidArgumentError("golden.json malformed");
  ASSIGN_OR_RETURN(auto tensors,
                   SafetensorsFile::Open(absl::StrCat(kGoldenDir, "/golden.safetensors")));
  ASSIGN_OR_RETURN(Backend * cpu, GetBackend("cpu"));
  // The vision tower is replicated (not tensor-parallel): features come from one full copy.
  ASSIGN_OR_RETURN(Glm4vModel model, LoadGlm4vModel(kModelDir, cpu));
  std::vector<GoldenCase> cases;
  for (const auto& c : spec.at("cases")) {
    const std::string kind = c.at("kind").get<std::string>();
    if (kind != "multimodal" && kind != "text") continue;
    GoldenCase g;
    g.kind = kind;
    g.input_ids = c.at("input_ids").get<std::vector<int32_t>>();
    g.greedy_ids = c.at("greedy_ids").get<std::vector<int32_t>>();
    std::vector<int32_t> image_rows;
    if (kind == "multimodal") {
      ASSIGN_OR_RETURN(Tensor pixels, tensors->Get(c.at("image").get<std::string>()));
      ASSIGN_OR_RETURN(Tensor features, model.vision->Forward(pixels.ToF32()));
      ASSIGN_OR_RETURN(g.features, features.Reshape({-1, model.config.hidden_size}));
      g.features = g.features.Clone();
      image_rows.push_back(static_cast<int32_t>(g.features.dim(0)));
    }
    ASSIGN_OR_RETURN(g.prompt, SpliceImages(g.input_ids, image_rows, model.config, 1));
    ASSIGN_OR_RETURN(Tensor logits, tensors->Get(c.at("prompt_logits").get<std::string>()));
    g.prompt_logits = logits.ToF32();
    cases.push_back(std::move(g));
  }
  if (cases.size() != 2) return absl::NotFoundError("expected the multimodal and text cases");
  return cases;
}

absl::Status CompareLogits(const Tensor& ours, const Tensor& golden) {
  if (ours.numel() != golden.numel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("logits ", ours.DebugString(), " vs golden ", golden.DebugString()));
  }
  double err = 0, scale = 0;
  const float* a = ours.data<float>();
  const float* b = golden.data<float>();
  for (int64_t i = 0; i < golden.numel(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  if (scale > 0 && err <= kRelativeTolerance * scale) return absl::OkStatus();
  return absl::OutOfRangeError(
      absl::StrCat("max error ", err, " > ", kRelativeTolerance, " x max |golden| ", scale));
}

}  // namespace glm4v::worker::tp::testing
