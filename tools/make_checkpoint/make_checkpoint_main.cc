// Writes a random-weight GLM-4V checkpoint of GLM-4V-9B's exact widths (or any config) at any
// depth, in the real HF layout, in constant memory (model/testing/streaming_checkpoint.h):
//
//   bazel run -c opt //tools/make_checkpoint -- --out=/tmp/glm4v-9b-2x2 --decoder_layers=2 \
//       --vision_layers=2                       # real widths, 3.75 GiB
//   bazel run -c opt //tools/make_checkpoint -- --out=/tmp/glm4v-9b    # full depth, 26 GiB
//   bazel run -c opt //tools/make_checkpoint -- --out=DIR --config=path/to/config.json
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/glm4v_weight_names.h"
#include "common/model_config.h"
#include "model/testing/glm4v_9b_config.h"
#include "model/testing/streaming_checkpoint.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, out, "", "Output directory (created if missing).");
ABSL_FLAG(std::string, config, "",
          "A config.json to start from; empty: GLM-4V-9B's own (hidden 4096, 40 layers, vocab "
          "151,552; vision 1120 px, 1792 wide, 63 layers).");
ABSL_FLAG(int, decoder_layers, -1, "Decoder layers (num_layers); -1 keeps the config's.");
ABSL_FLAG(int, vision_layers, -1, "Vision layers (num_hidden_layers); -1 keeps the config's.");
ABSL_FLAG(int, seed, 1, "Random seed (the same seed writes the same bytes).");
ABSL_FLAG(double, max_shard_gib, 4.0, "Largest shard.");

namespace {

using json = nlohmann::json;

int Main() {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "--out is required\n");
    return 2;
  }
  json config = json::parse(glm4v::testing::Glm4v9bConfigJson());
  if (!absl::GetFlag(FLAGS_config).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_config));
    std::stringstream text;
    text << in.rdbuf();
    config = json::parse(text.str(), nullptr, false);
    if (config.is_discarded()) {
      std::fprintf(stderr, "%s: not JSON\n", absl::GetFlag(FLAGS_config).c_str());
      return 2;
    }
  }
  if (absl::GetFlag(FLAGS_decoder_layers) >= 0) {
    config["num_layers"] = absl::GetFlag(FLAGS_decoder_layers);
  }
  if (absl::GetFlag(FLAGS_vision_layers) >= 0) {
    config["vision_config"]["num_hidden_layers"] = absl::GetFlag(FLAGS_vision_layers);
  }
  const std::string text = config.dump(2);
  absl::StatusOr<glm4v::ModelConfig> parsed = glm4v::ParseModelConfig(text);
  if (!parsed.ok()) {
    std::fprintf(stderr, "%s\n", parsed.status().ToString().c_str());
    return 2;
  }
  int64_t decoder_bytes = 0, vision_bytes = 0;
  for (const glm4v::WeightSpec& w : glm4v::DecoderWeightSpecs(*parsed)) {
    decoder_bytes += glm4v::NumElements(w.shape) * 2;
  }
  for (const glm4v::WeightSpec& w : glm4v::VisionWeightSpecs(*parsed)) {
    vision_bytes += glm4v::NumElements(w.shape) * 2;
  }
  std::printf("writing %s: decoder %d layers (%.2f GiB), vision %d layers (%.2f GiB), bf16\n",
              out.c_str(), parsed->num_layers, decoder_bytes / double(1 << 30),
              parsed->vision.num_hidden_layers, vision_bytes / double(1 << 30));
  glm4v::testing::StreamingCheckpointOptions options;
  options.seed = static_cast<uint32_t>(absl::GetFlag(FLAGS_seed));
  options.max_shard_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_max_shard_gib) * (1 << 30));
  const absl::Time start = absl::Now();
  absl::Status status = glm4v::testing::WriteRandomCheckpoint(out, text, options);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("done in %.1f s\n", absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Main();
}
