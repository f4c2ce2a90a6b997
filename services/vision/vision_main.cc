// The vision-encoder process: glm4v.internal.VisionEncoder on --grpc_port, metrics on
// --metrics_port (see docs/SERVICES.md).
#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/logging.h"
#include "common/metrics/registry.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "model/vision_tower.h"
#include "model/weight_options.h"
#include "services/common/service_host.h"
#include "services/common/tls_flags.h"
#include "services/common/shutdown_signal.h"
#include "services/vision/encode_batcher.h"
#include "model/memory_sizing.h"
#include "services/vision/feature_cache.h"
#include "services/vision/tower_encode_fn.h"
#include "services/vision/vision_encoder_service.h"
#include "services/vision/vision_metrics.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to bind the gRPC and metrics ports to.");
ABSL_FLAG(int, grpc_port, 50061, "gRPC port (glm4v.internal.VisionEncoder).");
ABSL_FLAG(int, metrics_port, 9481, "HTTP port of /metrics and /healthz; -1 disables.");
ABSL_FLAG(std::string, model_dir, "", "Checkpoint directory (config.json + safetensors).");
ABSL_FLAG(std::string, backend, "cpu", "Kernel backend: cpu or cuda.");
ABSL_FLAG(int, max_batch, 8, "Most images per vision-tower batch.");
ABSL_FLAG(int, max_connection_age_seconds, 60,
          "Close client connections after this long (gracefully): round-robin gateways then "
          "resolve the Service again and spread over vision pods added since; 0 = never.");
ABSL_FLAG(int, max_wait_ms, 5, "How long a batch waits for more images to join.");
ABSL_FLAG(int, max_queue, 256, "Images waiting for the tower; beyond it RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, cache_entries, 256, "Feature cache size in images (0 disables).");
ABSL_FLAG(std::string, feature_cache_dtype, "f32",
          "What the feature cache keeps: f32 (bit-exact with the float reference) or bf16 (half "
          "the memory: 13 MB per GLM-4V image instead of 26; what a bfloat16 wire carries).");
ABSL_FLAG(int64_t, max_image_pixels, 50'000'000, "Largest decoded image (width * height).");
ABSL_FLAG(int64_t, max_image_bytes, 32 << 20, "Largest encoded image.");
ABSL_FLAG(int, max_images_per_request, 16, "Most images in one Encode call.");
ABSL_FLAG(bool, jpeg_dct_scaling, false,
          "Decode JPEGs at least twice the model's image size at 1/2, 1/4 or 1/8 scale in the DCT "
          "domain before the bicubic resize: faster, but not Pillow's pixels (see "
          "docs/PERFORMANCE.md for the error).");
ABSL_FLAG(int, drain_grace_seconds, 30, "On SIGTERM, how long in-flight requests may finish.");
ABSL_FLAG(std::string, weight_dtype, "auto",
          "Weight matrix storage: auto (cpu: the checkpoint's own dtype, so a bf16 checkpoint "
          "is read in place from its mapped file; cuda: bf16), f32, bf16, or int8 / int4 / fp8 "
          "(every Linear quantized at load: int8 and fp8 e4m3 per output channel, int4 in groups "
          "of 128; CPU and CUDA backends).");

namespace glm4v {
namespace {

absl::Status Run() {
  RETURN_IF_ERROR(InitLogging());
  SetLogComponent("vision");
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir is required");
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(Backend * backend, GetServingBackend(absl::GetFlag(FLAGS_backend)));
  ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  WeightLoadOptions weight_options;
  RETURN_IF_ERROR(ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype),
                                       &weight_options));
  ASSIGN_OR_RETURN(std::unique_ptr<VisionTower> tower,
                   VisionTower::Load(checkpoint, config, backend, weight_options));
  const std::string cache_dtype_name = absl::GetFlag(FLAGS_feature_cache_dtype);
  if (cache_dtype_name != "f32" && cache_dtype_name != "bf16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--feature_cache_dtype=", cache_dtype_name, ": expected f32 or bf16"));
  }
  const DType cache_dtype = cache_dtype_name == "bf16" ? DType::kBF16 : DType::kF32;
  const int64_t feature_bytes = int64_t{config.vision.feature_rows()} * config.hidden_size *
                                static_cast<int64_t>(DTypeSize(cache_dtype));
  // A full batch's activation peak, from the sizing code the deployment limits use.
  const int64_t activation_bytes = VisionActivationBytes(
      config, std::max(1, absl::GetFlag(FLAGS_max_batch)), backend->activation_dtype());
  LOG_INFO("vision tower loaded")
      .With("model_dir", model_dir)
      .With("weight_bytes", tower->weights().HeldBytes())
      .With("feature_cache_bytes",
            std::max(0, absl::GetFlag(FLAGS_cache_entries)) * feature_bytes)
      .With("feature_cache_dtype", cache_dtype_name)
      .With("activation_peak_bytes", activation_bytes)
      .With("budget_bytes", tower->weights().HeldBytes() +
                                std::max(0, absl::GetFlag(FLAGS_cache_entries)) * feature_bytes +
                                activation_bytes)
      .With("image_size", config.vision.image_size)
      .With("feature_rows", config.vision.feature_rows());

  metrics::Registry& registry = metrics::DefaultRegistry();
  ASSIGN_OR_RETURN(VisionMetrics vision_metrics, VisionMetrics::Register(&registry));

  EncodeBatcher::Options batch_options;
  batch_options.max_batch = std::max(1, absl::GetFlag(FLAGS_max_batch));
  batch_options.max_wait = absl::Milliseconds(std::max(0, absl::GetFlag(FLAGS_max_wait_ms)));
  batch_options.max_queue = std::max(1, absl::GetFlag(FLAGS_max_queue));
  EncodeBatcher batcher(
      batch_options, MakeTowerEncodeFn(tower.get(), backend),
      {vision_metrics.encode_seconds, vision_metrics.batch_size, vision_metrics.queue_depth});
  FeatureCache cache(std::max(0, absl::GetFlag(FLAGS_cache_entries)));

  ServiceHost::Options host_options;
  host_options.component = "vision";
  host_options.health_services = {"glm4v.internal.VisionEncoder"};
  host_options.bind_host = absl::GetFlag(FLAGS_host);
  host_options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  host_options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  host_options.drain_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds));
  host_options.max_receive_message_bytes = static_cast<int>(std::min<int64_t>(
      absl::GetFlag(FLAGS_max_image_bytes) * absl::GetFlag(FLAGS_max_images_per_request) +
          (1 << 20),
      1 << 30));
  host_options.registry = &registry;
  // TLS on the gRPC port; with --tls_ca only callers with a certificate it signed (mTLS).
  ASSIGN_OR_RETURN(host_options.credentials, ServerCredentialsFromFlags());
  host_options.max_connection_age = absl::Seconds(absl::GetFlag(FLAGS_max_connection_age_seconds));
  ServiceHost host(host_options);

  VisionEncoderService::Options service_options;
  service_options.image_size = config.vision.image_size;
  service_options.limits.max_pixels = absl::GetFlag(FLAGS_max_image_pixels);
  service_options.limits.max_input_bytes = absl::GetFlag(FLAGS_max_image_bytes);
  service_options.preprocess.jpeg_dct_scaling = absl::GetFlag(FLAGS_jpeg_dct_scaling);
  service_options.max_images_per_request = absl::GetFlag(FLAGS_max_images_per_request);
  service_options.cache_dtype = cache_dtype;
  VisionEncoderService service(service_options, &batcher, &cache, &host.gate(), &vision_metrics);
  host.AddService(&service);
  RETURN_IF_ERROR(host.Start());
  host.ServeUntilShutdown();
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  glm4v::ShutdownSignal::Install();
  absl::SetProgramUsageMessage("GLM-4V vision-encoder service");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = glm4v::Run();
  if (!status.ok()) {
    LOG_ERROR("vision service failed").With("error", status);
    return 1;
  }
  return 0;
}
