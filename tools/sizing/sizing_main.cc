// Memory sizing from the project's own code (model/memory_sizing.h).
//   bazel run //tools/sizing -- --tables            docs/DEPLOYMENT.md's sizing tables
//   bazel run //tools/sizing -- --gpu_gib=24 --weight_dtype=int8 --vision_weight_dtype=int8 \
//       --kv_cache_bytes=... --cache_entries=16     one GPU plan; exit 1 when it does not fit
// The model is GLM-4V-9B unless --model_dir names a checkpoint directory (its config.json).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/model_config.h"
#include "common/status_macros.h"
#include "model/memory_sizing.h"
#include "model/tensor_parallel.h"
#include "model/testing/glm4v_9b_config.h"
#include "model/weight_options.h"

ABSL_FLAG(std::string, model_dir, "", "checkpoint directory (default: GLM-4V-9B's config)");
ABSL_FLAG(bool, tables, false, "print the sizing tables (markdown)");
ABSL_FLAG(double, gpu_gib, 24, "GPU memory in GiB for the single-plan mode (24 GB cards: 22.5)");
ABSL_FLAG(int, tp_size, 1, "tensor-parallel size");
ABSL_FLAG(int, decode_context_parallel, 0,
          "decode context parallel size (the worker's flag): 0 = the worker's default "
          "(tp_size / kv_groups when the ranks outnumber the groups), 1 = replicated KV");
ABSL_FLAG(std::string, weight_dtype, "bf16", "decoder weights: bf16, fp8, int8, int4");
ABSL_FLAG(std::string, vision_weight_dtype, "",
          "vision weights when the vision service shares the GPU (empty: it does not)");
ABSL_FLAG(std::string, kv_cache_dtype, "bf16", "KV cache dtype: bf16 or f32");
ABSL_FLAG(int64_t, kv_cache_bytes, 0, "fixed KV budget (the worker's flag); 0: all that is left");
ABSL_FLAG(int64_t, cache_entries, 0, "vision feature cache entries (vision on the GPU)");
ABSL_FLAG(std::string, feature_dtype, "bf16", "feature cache dtype: bf16 or f32");
ABSL_FLAG(int64_t, vision_max_batch, 1, "images per vision batch (vision on the GPU)");
ABSL_FLAG(int64_t, max_num_batched_tokens, 2048, "worker rows per step");
ABSL_FLAG(int64_t, max_num_seqs, 64, "worker sequences per step");
ABSL_FLAG(std::string, host_budget, "",
          "vision | worker: print the host memory one pod of that process needs with the "
          "given flags (--backend, --tp_size, --weight_dtype, --kv_cache_bytes, "
          "--cache_entries, --feature_dtype, ...) instead of a GPU plan");
ABSL_FLAG(std::string, backend, "cpu", "host budget: the process's --backend (cpu or cuda)");

namespace glm4v {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

absl::StatusOr<WeightStorage> Storage(const std::string& name) {
  WeightLoadOptions options;
  RETURN_IF_ERROR(ParseWeightDTypeFlag("weight_dtype", name, &options));
  WeightStorage s;  // GPU: bf16 matrices and activations
  s.linear = options.quantization;
  if (options.matrix_dtype.has_value()) s.matrix = *options.matrix_dtype;
  return s;
}

absl::StatusOr<DType> FloatDType(const std::string& name) {
  if (name == "bf16") return DType::kBF16;
  if (name == "f32") return DType::kF32;
  return absl::InvalidArgumentError(absl::StrCat("expected bf16 or f32, got ", name));
}

std::string G(int64_t bytes) { return absl::StrFormat("%.2f", bytes / kGiB); }

// GLM-4-9B-chat-1M: the GLM-4V-9B decoder without the vision tower, seq_length 1,048,576. Tokens
// of context one TP group holds (bf16 weights and KV, its own GPUs), with and without decode
// context parallelism.
absl::Status PrintLongContextTable(const ModelConfig& glm4v) {
  ModelConfig config = glm4v;
  config.has_vision = false;
  config.seq_length = 1 << 20;
  std::printf("### GLM-4-9B-chat-1M: KV capacity per TP group (bf16 weights and KV cache)\n\n"
              "Tokens of context one worker group holds (= the longest sequence it can serve, "
              "up to the model's 1,048,576); in brackets how many 1M-token sequences fit at "
              "once. DCP: --decode_context_parallel.\n\n"
              "| TP | DCP | KV bytes per held token per rank | 80 GB (H100) | 141 GB (H200) |\n"
              "|---|---|---|---|---|\n");
  ASSIGN_OR_RETURN(const WeightStorage bf16, Storage("bf16"));
  for (int tp : {1, 2, 4, 8}) {
    std::vector<int> dcps = {1};
    if (DefaultDecodeContextParallel(config, tp) > 1) {
      for (int d = 2; d <= DefaultDecodeContextParallel(config, tp); d *= 2) dcps.push_back(d);
    }
    for (int dcp : dcps) {
      ASSIGN_OR_RETURN(const int64_t per_token, KvBytesPerTokenPerRank(config, tp, DType::kBF16));
      std::printf("| %d | %d | %lld |", tp, dcp, static_cast<long long>(per_token));
      for (double gib : {79.65, 131.0}) {
        GpuPlanRequest r;
        r.gpu_bytes = static_cast<int64_t>(gib * kGiB);
        r.tp_size = tp;
        r.decoder = bf16;
        r.decode_context_parallel = dcp;
        ASSIGN_OR_RETURN(const GpuPlan p, PlanGpu(config, r));
        if (!p.fits()) {
          std::printf(" - |");
          continue;
        }
        std::printf(" %lld (%.2f) |", static_cast<long long>(p.kv_tokens),
                    static_cast<double>(p.kv_tokens) / config.seq_length);
      }
      std::printf("\n");
    }
  }
  std::printf("\n");
  return absl::OkStatus();
}

absl::Status PrintTables(const ModelConfig& config) {
  const std::vector<std::string> dtypes = {"bf16", "fp8", "int8", "int4"};
  std::printf("### Weights per GPU (GiB)\n\n| weights | vision + projector |");
  for (int tp : {1, 2, 4, 8}) std::printf(" decoder TP %d |", tp);
  std::printf("\n|---|---|---|---|---|---|\n");
  for (const std::string& d : dtypes) {
    ASSIGN_OR_RETURN(const WeightStorage s, Storage(d));
    std::printf("| %s | %s |", d.c_str(), G(VisionWeightBytes(config, s)).c_str());
    for (int tp : {1, 2, 4, 8}) {
      ASSIGN_OR_RETURN(const int64_t b, DecoderWeightBytes(config, 0, tp, s));
      std::printf(" %s |", G(b).c_str());
    }
    std::printf("\n");
  }
  ASSIGN_OR_RETURN(const int64_t kv1, KvBytesPerTokenPerRank(config, 1, DType::kBF16));
  ASSIGN_OR_RETURN(const int64_t kv2, KvBytesPerTokenPerRank(config, 2, DType::kBF16));
  std::printf("\nKV cache (bf16) per token per rank: %lld bytes at TP 1, %lld from TP 2 on. "
              "A feature-cache entry: %.1f MiB in bf16.\n\n",
              static_cast<long long>(kv1), static_cast<long long>(kv2),
              FeatureBytesPerImage(config, DType::kBF16) / 1048576.0);

  struct Gpu {
    const char* name;
    double gib;
    bool vision_on_gpu;  // single-GPU deployment: vision beside the decoder
  };
  const Gpu gpus[] = {{"24 GB (L4, A10G, RTX 4090), vision on the same GPU", 22.5, true},
                      {"80 GB (H100), vision on its own GPU", 79.65, false},
                      {"141 GB (H200), vision on its own GPU", 131.0, false}};
  const int64_t contexts[] = {8192, 32768, 131072};
  for (const Gpu& gpu : gpus) {
    std::printf("### %s: %.2f GiB\n\n", gpu.name, gpu.gib);
    std::printf("KV tokens per decoder group (sequences of 8K / 32K / 128K that fit at once); "
                "`-`: the weights do not fit.\n\n| weights |");
    const std::vector<int> tps = gpu.vision_on_gpu ? std::vector<int>{1}
                                                   : std::vector<int>{1, 2, 4, 8};
    for (int tp : tps) std::printf(" TP %d |", tp);
    std::printf("\n|---|");
    for (size_t i = 0; i < tps.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (const std::string& d : dtypes) {
      ASSIGN_OR_RETURN(const WeightStorage s, Storage(d));
      std::printf("| %s |", d.c_str());
      for (int tp : tps) {
        GpuPlanRequest r;
        r.gpu_bytes = static_cast<int64_t>(gpu.gib * kGiB);
        r.tp_size = tp;
        r.decoder = s;
        r.max_batched_tokens = gpu.vision_on_gpu ? 2048 : 4096;
        r.max_seqs = gpu.vision_on_gpu ? 32 : 128;
        r.vision_on_gpu = gpu.vision_on_gpu;
        r.vision = s;
        r.feature_cache_entries = gpu.vision_on_gpu ? 16 : 0;
        r.feature_dtype = DType::kF32;  // the vision service caches f32 rows
        ASSIGN_OR_RETURN(const GpuPlan p, PlanGpu(config, r));
        if (!p.fits()) {
          std::printf(" - |");
          continue;
        }
        std::printf(" %lld (%lld / %lld / %lld) |", static_cast<long long>(p.kv_tokens),
                    static_cast<long long>(p.kv_tokens / contexts[0]),
                    static_cast<long long>(p.kv_tokens / contexts[1]),
                    static_cast<long long>(p.kv_tokens / contexts[2]));
      }
      std::printf("\n");
    }
    std::printf("\n");
  }
  return PrintLongContextTable(config);
}

// Host memory of one pod: what the process keeps in RAM. A CUDA process keeps its weights, KV
// and activations on the GPU; the host holds its runtime (CUDA context, pinned staging, the
// step's host copies) and, for vision, the feature cache, which lives in host memory.
constexpr int64_t kCudaHostBytesPerProcess = int64_t{2} << 30;

absl::Status PrintHostBudget(const ModelConfig& config, const std::string& process) {
  const bool cuda = absl::GetFlag(FLAGS_backend) == "cuda";
  const std::string dtype = absl::GetFlag(FLAGS_weight_dtype);
  ASSIGN_OR_RETURN(WeightStorage storage, Storage(dtype == "auto" ? "bf16" : dtype));
  storage.activation = DType::kF32;  // CPU activations
  int64_t weights = 0, kv = 0, cache = 0, activations = 0, runtime = 0;
  if (process == "worker") {
    const int tp = absl::GetFlag(FLAGS_tp_size);
    if (cuda) {
      runtime = tp * kCudaHostBytesPerProcess;
    } else {
      // One pod runs every rank of its group.
      for (int r = 0; r < tp; ++r) {
        ASSIGN_OR_RETURN(const int64_t w, DecoderWeightBytes(config, r, tp, storage));
        weights += w;
      }
      kv = tp * absl::GetFlag(FLAGS_kv_cache_bytes);
      ASSIGN_OR_RETURN(const int64_t a,
                       DecoderActivationBytes(config, tp, absl::GetFlag(FLAGS_max_num_batched_tokens),
                                              absl::GetFlag(FLAGS_max_num_seqs), DType::kF32,
                                              storage.linear));
      activations = tp * a;
    }
  } else if (process == "vision") {
    ASSIGN_OR_RETURN(const DType feature, FloatDType(absl::GetFlag(FLAGS_feature_dtype)));
    cache = absl::GetFlag(FLAGS_cache_entries) * FeatureBytesPerImage(config, feature);
    if (cuda) {
      runtime = kCudaHostBytesPerProcess;
    } else {
      weights = VisionWeightBytes(config, storage);
      activations =
          VisionActivationBytes(config, absl::GetFlag(FLAGS_vision_max_batch), DType::kF32);
    }
  } else {
    return absl::InvalidArgumentError("--host_budget must be vision or worker");
  }
  const int64_t total = weights + kv + cache + activations + runtime;
  std::printf("host budget %s (%s): weights %s, KV %s, feature cache %s, activations %s, "
              "runtime %s = %s GiB; budget_bytes=%lld\n",
              process.c_str(), cuda ? "cuda" : "cpu", G(weights).c_str(), G(kv).c_str(),
              G(cache).c_str(), G(activations).c_str(), G(runtime).c_str(), G(total).c_str(),
              static_cast<long long>(total));
  return absl::OkStatus();
}

absl::StatusOr<bool> CheckOnePlan(const ModelConfig& config) {
  GpuPlanRequest r;
  r.gpu_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_gpu_gib) * kGiB);
  r.tp_size = absl::GetFlag(FLAGS_tp_size);
  r.decode_context_parallel = absl::GetFlag(FLAGS_decode_context_parallel) > 0
                                  ? absl::GetFlag(FLAGS_decode_context_parallel)
                                  : DefaultDecodeContextParallel(config, r.tp_size);
  ASSIGN_OR_RETURN(r.decoder, Storage(absl::GetFlag(FLAGS_weight_dtype)));
  ASSIGN_OR_RETURN(r.kv_dtype, FloatDType(absl::GetFlag(FLAGS_kv_cache_dtype)));
  r.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  r.max_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  r.max_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  const std::string vision = absl::GetFlag(FLAGS_vision_weight_dtype);
  if (!vision.empty()) {
    r.vision_on_gpu = true;
    ASSIGN_OR_RETURN(r.vision, Storage(vision));
    r.feature_cache_entries = absl::GetFlag(FLAGS_cache_entries);
    ASSIGN_OR_RETURN(r.feature_dtype, FloatDType(absl::GetFlag(FLAGS_feature_dtype)));
    r.vision_batch = absl::GetFlag(FLAGS_vision_max_batch);
  }
  ASSIGN_OR_RETURN(const GpuPlan p, PlanGpu(config, r));
  std::printf("gpu %s GiB: decoder weights %s, vision weights %s, feature cache %s, "
              "activations %s, runtime reserve %s, KV cache %s (%lld tokens at %lld B/token "
              "per rank, decode context parallel %d), headroom %s GiB: %s\n",
              G(p.gpu_bytes).c_str(), G(p.decoder_weights).c_str(), G(p.vision_weights).c_str(),
              G(p.feature_cache).c_str(), G(p.activations).c_str(), G(p.reserve).c_str(),
              G(p.kv_cache).c_str(), static_cast<long long>(p.kv_tokens),
              static_cast<long long>(p.kv_bytes_per_token), r.decode_context_parallel,
              G(p.headroom).c_str(),
              p.fits() ? "fits" : "DOES NOT FIT");
  return p.fits();
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_model_dir);
  auto config = dir.empty() ? glm4v::ParseModelConfig(glm4v::testing::Glm4v9bConfigJson(),
                                                      "glm-4v-9b")
                            : glm4v::LoadModelConfig(dir);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_host_budget).empty()) {
    const absl::Status s = glm4v::PrintHostBudget(*config, absl::GetFlag(FLAGS_host_budget));
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 2;
    }
    return 0;
  }
  if (absl::GetFlag(FLAGS_tables)) {
    const absl::Status s = glm4v::PrintTables(*config);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 2;
    }
    return 0;
  }
  auto fits = glm4v::CheckOnePlan(*config);
  if (!fits.ok()) {
    std::fprintf(stderr, "%s\n", fits.status().ToString().c_str());
    return 2;
  }
  return *fits ? 0 : 1;
}
