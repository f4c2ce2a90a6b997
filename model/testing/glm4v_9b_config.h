// GLM-4V-9B's config.json (THUDM/glm-4v-9b: the fields this project reads), optionally with
// fewer layers: the real widths for random-weight checkpoints (tools/make_checkpoint,
// real-width tests and benchmarks).
#pragma once

#include <string>

namespace glm4v {
namespace testing {

// decoder_layers / vision_layers < 0 keep GLM-4V-9B's 40 / 63.
std::string Glm4v9bConfigJson(int decoder_layers = -1, int vision_layers = -1);

}  // namespace testing
}  // namespace glm4v
