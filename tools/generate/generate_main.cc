// Greedy generation from the command line:
//   bazel run //tools/generate:generate -- --model_dir=/abs/model --image=/abs/cat.png
//     --prompt_ids=151331,151333,151336,198,151339,151329,151340,3838,151337 --max_new_tokens=32
// With --image the prompt must hold <|begin_of_image|> <|endoftext|> <|end_of_image|> once.
// Prints the generated ids (comma-separated, ending with the stop id if one was produced).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "model/glm4v_model.h"
#include "model/greedy_generate.h"
#include "model/image_splice.h"
#include "model/weight_options.h"
#include "services/vision/image/preprocess.h"

ABSL_FLAG(std::string, model_dir, "", "GLM-4V checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, image, "", "optional image file (PNG/JPEG)");
ABSL_FLAG(std::string, prompt_ids, "", "comma-separated prompt token ids");
ABSL_FLAG(int, synthetic_prompt_tokens, 0,
          "instead of --prompt_ids: a deterministic prompt of this many ordinary token ids "
          "(long-context benchmarks; a 128K-id list does not fit one command-line argument)");
ABSL_FLAG(int, prefill_chunk, 0, "prefill in chunks of this many tokens (0: one step)");
ABSL_FLAG(int, max_new_tokens, 32, "maximum number of generated tokens");
ABSL_FLAG(std::string, backend, "cpu",
          "compute backend: cpu, or cuda (needs a CUDA device)");
ABSL_FLAG(std::string, weight_dtype, "auto",
          "weight matrix storage: auto (the checkpoint's dtype on the CPU, bf16 on CUDA), f32, "
          "bf16, or int8 / int4 / fp8 (quantized at load)");
ABSL_FLAG(std::string, feature_dtype, "f32",
          "image features as the worker receives them: f32, or bf16 = rounded to bf16 as the "
          "gateway's --vision_feature_dtype=bfloat16 sends them");
ABSL_FLAG(bool, ignore_eos, false, "generate max_new_tokens tokens, through eos ids");
ABSL_FLAG(std::string, kv_dtype, "auto",
          "KV cache dtype: auto (the backend's activation dtype), f32 or bf16");

namespace glm4v {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt_ids: bad id '", part, "'"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--prompt_ids is empty");
  return ids;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status Run() {
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir is required");
  std::vector<int32_t> ids;
  if (absl::GetFlag(FLAGS_synthetic_prompt_tokens) > 0) {
    ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(model_dir));
    // Ids below the special ones (GLM tokenizers put them at the end of the vocabulary).
    const int ordinary = std::max(1, std::min(config.padded_vocab_size, 150000) * 9 / 10);
    for (int i = 0; i < absl::GetFlag(FLAGS_synthetic_prompt_tokens); ++i) {
      ids.push_back(static_cast<int32_t>((int64_t{i} * 7919 + 13) % ordinary));
    }
  } else {
    ASSIGN_OR_RETURN(ids, ParseIds(absl::GetFlag(FLAGS_prompt_ids)));
  }
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(absl::GetFlag(FLAGS_backend)));
  const std::string image_path = absl::GetFlag(FLAGS_image);
  const bool with_image = !image_path.empty();

  WeightLoadOptions weights;
  RETURN_IF_ERROR(
      ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype), &weights));
  GreedyOptions options;
  ASSIGN_OR_RETURN(options.kv_dtype, ParseFloatDTypeFlag("kv_dtype", absl::GetFlag(FLAGS_kv_dtype)));

  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Glm4vModel model, LoadGlm4vModel(model_dir, backend, with_image, weights));
  if (with_image && !model.config.has_vision) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--image: ", model_dir, " is a text-only model (no vision_config in its config.json)"));
  }
  auto loaded = std::chrono::steady_clock::now();

  Tensor features;
  std::vector<int32_t> image_rows;
  double vision_ms = 0;
  if (with_image) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(image_path));
    const int size = model.config.vision.image_size;
    ASSIGN_OR_RETURN(PixelTensor pixels, PreprocessImage(bytes, size));
    // Features stay on the backend's device (in its activation dtype) for the decoder.
    ASSIGN_OR_RETURN(Tensor batch,
                     model.vision->Forward(Tensor::FromF32(
                         {1, pixels.channels, pixels.height, pixels.width}, pixels.data)));
    ASSIGN_OR_RETURN(features, batch.Reshape({-1, model.config.hidden_size}));
    vision_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          loaded).count();
    if (absl::GetFlag(FLAGS_feature_dtype) == "bf16") {
      // What the worker gets from a bfloat16 wire (a device backend's features are bf16 already).
      if (features.device() == Device::kCpu && features.dtype() == DType::kF32) {
        features = features.ToBF16().ToF32();
      }
    } else if (absl::GetFlag(FLAGS_feature_dtype) != "f32") {
      return absl::InvalidArgumentError("--feature_dtype must be f32 or bf16");
    }
    image_rows.push_back(static_cast<int32_t>(features.dim(0)));
  }
  ASSIGN_OR_RETURN(SplicedPrompt prompt, SpliceImages(ids, image_rows, model.config));

  options.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  options.prefill_chunk = std::max(0, absl::GetFlag(FLAGS_prefill_chunk));
  if (!absl::GetFlag(FLAGS_ignore_eos)) {
    options.stop_ids.assign(model.config.eos_token_ids.begin(), model.config.eos_token_ids.end());
  }
  ASSIGN_OR_RETURN(GreedyResult result,
                   GenerateGreedy(*model.decoder, prompt, features, options));
  auto done = std::chrono::steady_clock::now();

  std::printf("%s\n", absl::StrJoin(result.ids, ",").c_str());
  using Ms = std::chrono::duration<double, std::milli>;
  std::fprintf(stderr,
               "prompt %zu rows (%zu ids), %zu new tokens; load %.0f ms, run %.0f ms (image "
               "preprocessing + vision tower %.0f ms)\n",
               prompt.token_ids.size(), ids.size(), result.ids.size(), Ms(loaded - start).count(),
               Ms(done - loaded).count(), vision_ms);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  std::fprintf(stderr,
               "prefill %.0f ms (%.1f tokens/s), decode %.2f ms/token over %zu steps, peak RSS "
               "%.1f MiB\n",
               result.prefill_ms, prompt.token_ids.size() / (result.prefill_ms / 1000.0),
               result.ids.size() > 1 ? result.decode_ms / (result.ids.size() - 1) : 0.0,
               result.ids.size() > 1 ? result.ids.size() - 1 : 0, usage.ru_maxrss / 1024.0);
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::Status status = glm4v::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "generate: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
