#include "model/glm4v_model.h"

#include "common/safetensors.h"
#include "common/status_macros.h"

namespace glm4v {

absl::StatusOr<Glm4vModel> LoadGlm4vModel(const std::string& model_dir, Backend* backend,
                                          bool load_vision, const WeightLoadOptions& weights) {
  Glm4vModel model;
  ASSIGN_OR_RETURN(model.config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  // A text-only checkpoint has no tower to load (callers check has_vision before images).
  if (load_vision && model.config.has_vision) {
    ASSIGN_OR_RETURN(model.vision, VisionTower::Load(checkpoint, model.config, backend, weights));
  }
  ASSIGN_OR_RETURN(model.decoder, Decoder::Load(checkpoint, model.config, backend, {}, weights));
  return model;
}

}  // namespace glm4v
