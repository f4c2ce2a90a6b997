// The decoder-worker process (rank 0 of a tensor-parallel group; TP > 1 is not wired up yet):
// glm4v.internal.DecoderWorker on --grpc_port, metrics on --metrics_port (docs/SERVICES.md).
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics/registry.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "services/common/service_host.h"
#include "services/common/shutdown_signal.h"
#include "worker/decoder_model_runner.h"
#include "worker/engine.h"
#include "worker/server/worker_service.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to bind the gRPC and metrics ports to.");
ABSL_FLAG(int, grpc_port, 50071, "gRPC port (glm4v.internal.DecoderWorker).");
ABSL_FLAG(int, metrics_port, 9092, "HTTP port of /metrics and /healthz; -1 disables.");
ABSL_FLAG(std::string, model_dir, "", "Checkpoint directory (config.json + safetensors).");
ABSL_FLAG(std::string, backend, "cpu", "Kernel backend: cpu or cuda.");
ABSL_FLAG(int, tp_size, 1, "Tensor-parallel group size.");
ABSL_FLAG(int, tp_rank, 0, "This process's rank in the group (0 serves gRPC).");
ABSL_FLAG(std::vector<std::string>, tp_peers, {}, "host:port of each rank's control channel.");
ABSL_FLAG(int64_t, kv_cache_bytes, 256 << 20, "KV cache budget in bytes (K and V, all layers).");
ABSL_FLAG(double, kv_cache_fraction, 0,
          "KV cache as a fraction of free device memory; overrides --kv_cache_bytes when > 0.");
ABSL_FLAG(int, num_kv_blocks, 0, "Exact KV block count; overrides both budgets when > 0.");
ABSL_FLAG(int, block_size, 16, "Tokens per KV block.");
ABSL_FLAG(int, max_num_seqs, 64, "Most sequences per step.");
ABSL_FLAG(int, max_num_batched_tokens, 2048, "Most rows (tokens) per step.");
ABSL_FLAG(int, max_model_len, 0, "Prompt + output limit per sequence; 0 = config seq_length.");
ABSL_FLAG(int, max_images_per_request, 4, "Most images per sequence.");
ABSL_FLAG(int, max_pending_requests, 1024,
          "Waiting + running sequences; beyond it RESOURCE_EXHAUSTED (0 = no cap).");
ABSL_FLAG(bool, enable_prefix_caching, true, "Reuse KV blocks of identical prompt prefixes.");
ABSL_FLAG(int, drain_grace_seconds, 30, "On SIGTERM, how long in-flight sequences may finish.");

namespace glm4v::worker {
namespace {

absl::Status Run() {
  RETURN_IF_ERROR(InitLogging());
  SetLogComponent("worker");
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir is required");
  if (absl::GetFlag(FLAGS_tp_size) != 1 || absl::GetFlag(FLAGS_tp_rank) != 0) {
    return absl::UnimplementedError(absl::StrCat(
        "--tp_size=", absl::GetFlag(FLAGS_tp_size), " --tp_rank=", absl::GetFlag(FLAGS_tp_rank),
        ": this build serves tensor-parallel size 1 only"));
  }
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(absl::GetFlag(FLAGS_backend)));
  ASSIGN_OR_RETURN(std::unique_ptr<DecoderModelRunner> runner,
                   DecoderModelRunner::Load(model_dir, backend));

  metrics::Registry& registry = metrics::DefaultRegistry();
  EngineConfig config;
  config.num_kv_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  config.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  config.kv_cache_memory_fraction = absl::GetFlag(FLAGS_kv_cache_fraction);
  if (config.kv_cache_memory_fraction > 0) config.kv_cache_bytes = 0;
  config.block_size = absl::GetFlag(FLAGS_block_size);
  config.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  config.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  config.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  config.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  config.max_images_per_request = absl::GetFlag(FLAGS_max_images_per_request);
  config.max_pending_requests = absl::GetFlag(FLAGS_max_pending_requests);
  config.metrics_registry = &registry;
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(config, std::move(runner)));
  LOG_INFO("engine ready")
      .With("model_dir", model_dir)
      .With("kv_blocks", engine->num_kv_blocks())
      .With("block_size", engine->kv_block_size())
      .With("max_model_len", engine->max_model_len());

  ServiceHost::Options host_options;
  host_options.component = "worker";
  host_options.health_services = {"glm4v.internal.DecoderWorker"};
  host_options.bind_host = absl::GetFlag(FLAGS_host);
  host_options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  host_options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  host_options.drain_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds));
  host_options.max_receive_message_bytes = 1 << 30;  // prompts with image features
  host_options.registry = &registry;
  ServiceHost host(host_options);
  WorkerService service(engine.get(), &host.gate(), absl::GetFlag(FLAGS_tp_size));
  host.AddService(&service);
  RETURN_IF_ERROR(host.Start());
  // In-flight streams have had the grace period; whatever is left is aborted (KV freed).
  host.ServeUntilShutdown(
      [&engine](absl::Time) { engine->Shutdown(Engine::ShutdownMode::kAbort); });
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v::worker

int main(int argc, char** argv) {
  glm4v::ShutdownSignal::Install();
  absl::SetProgramUsageMessage("GLM-4V decoder worker (rank 0)");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = glm4v::worker::Run();
  if (!status.ok()) {
    LOG_ERROR("worker failed").With("error", status);
    return 1;
  }
  return 0;
}
