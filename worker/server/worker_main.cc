// The decoder-worker process, one per tensor-parallel rank (docs/SERVICES.md).
//
// --tp_size=1 (default): loads the whole decoder and serves glm4v.internal.DecoderWorker on
// --grpc_port, metrics on --metrics_port.
// --tp_size=N > 1: every rank loads its shard and the ranks meet at --tp_rendezvous (rank 0's
// host:port). Rank 0 runs the engine on the group's runner and serves gRPC/metrics as above;
// ranks > 0 serve no ports (--grpc_port/--metrics_port are ignored) and just follow rank 0's
// steps, exiting 0 when rank 0 stops the group and 1 when it fails. When the group breaks (a rank
// died or stalled), rank 0 turns its gRPC health NOT_SERVING for good and refuses Submit with
// UNAVAILABLE; restarting the whole group (deploy/docker/glm4v-tp-group, tools/launcher) is the
// recovery.
#include <stdlib.h>  // setenv

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/metrics/registry.h"
#include "model/memory_sizing.h"
#include "worker/server/rank_metrics.h"
#include "common/status_macros.h"
#include "kernels/backends.h"
#include "model/weight_options.h"
#include "services/common/service_host.h"
#include "services/common/tls_flags.h"
#include "services/common/shutdown_signal.h"
#include "worker/decoder_model_runner.h"
#include "worker/engine.h"
#include "worker/server/worker_service.h"
#include "worker/tp/tp_group.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to bind the gRPC and metrics ports to.");
ABSL_FLAG(int, grpc_port, 50071, "gRPC port (glm4v.internal.DecoderWorker); ignored on ranks > 0.");
ABSL_FLAG(int, metrics_port, 9482,
          "HTTP port of /metrics and /healthz; -1 disables; ignored on ranks > 0.");
ABSL_FLAG(std::string, model_dir, "", "Checkpoint directory (config.json + safetensors).");
ABSL_FLAG(std::string, backend, "cpu", "Kernel backend: cpu or cuda.");
ABSL_FLAG(int, tp_size, 1, "Tensor-parallel group size (one process per rank).");
ABSL_FLAG(int, tp_rank, 0, "This process's rank in the group (0 serves gRPC, > 0 follow).");
ABSL_FLAG(int, tp_stats_interval_ms, 5000,
          "How often rank 0 collects every rank's stats (steps, step time, weight / KV / "
          "resident bytes) for its metrics (glm4v_worker_rank_*{rank}).");
ABSL_FLAG(int, decode_context_parallel, 0,
          "Decode context parallelism: when --tp_size exceeds the model's KV groups, the ranks "
          "holding one group split its tokens this many ways (each holds 1/N of the context). "
          "0 = tp_size / kv_groups when that is > 1, else 1; 1 = replicate the KV.");
ABSL_FLAG(std::string, tp_rendezvous, "",
          "host:port where rank 0 listens for the other ranks (same value on every rank); "
          "required when --tp_size > 1.");
ABSL_FLAG(std::string, tp_collectives, "auto",
          "Transport of the decoder's all-reduce/all-gather when --tp_size > 1: auto (nccl with "
          "--backend=cuda, else socket), socket (the host control channel) or nccl (needs "
          "--backend=cuda; one GPU per rank).");
ABSL_FLAG(int, tp_timeout_ms, 30000,
          "A dead or stalled rank fails the group within this (rank 0 heartbeats every quarter).");
ABSL_FLAG(int, tp_connect_timeout_ms, 600000,
          "Bound on all ranks meeting at start-up (after loading their weights).");
ABSL_FLAG(int64_t, kv_cache_bytes, 256 << 20, "KV cache budget in bytes (K and V, all layers).");
ABSL_FLAG(double, kv_cache_fraction, 0,
          "KV cache as a fraction of free device memory; overrides --kv_cache_bytes when > 0.");
ABSL_FLAG(int, num_kv_blocks, 0, "Exact KV block count; overrides both budgets when > 0.");
ABSL_FLAG(int, block_size, 16, "Tokens per KV block.");
ABSL_FLAG(std::string, weight_dtype, "auto",
          "Weight matrix storage: auto (cpu: the checkpoint's own dtype, so a bf16 checkpoint "
          "is read in place from its mapped file; cuda: bf16), f32, bf16, or int8 / int4 / fp8 "
          "(every Linear quantized at load: int8 and fp8 e4m3 per output channel, int4 in groups "
          "of 128; CPU and CUDA backends).");
ABSL_FLAG(std::string, kv_cache_dtype, "auto",
          "KV cache element type: auto (the backend's activation dtype: f32 on cpu, bf16 on "
          "cuda), f32 or bf16. Same value on every rank.");
ABSL_FLAG(std::string, cuda_graphs, "auto",
          "Decode steps as captured CUDA graphs: auto (on with --backend=cuda and --tp_size=1), "
          "on (needs --backend=cuda and --tp_size=1) or off.");
ABSL_FLAG(bool, device_sampling, true,
          "Sample where the logits are when the backend can (cuda, --tp_size=1): only token ids "
          "and the asked logprobs reach the host. false: copy logits rows and sample on the "
          "host (the CPU sampler, rows in parallel).");
ABSL_FLAG(int, max_num_seqs, 64, "Most sequences per step.");
ABSL_FLAG(int, max_num_batched_tokens, 2048, "Most rows (tokens) per step.");
ABSL_FLAG(int, max_model_len, 0, "Prompt + output limit per sequence; 0 = config seq_length.");
ABSL_FLAG(int, max_images_per_request, 4, "Most images per sequence.");
ABSL_FLAG(int, max_pending_requests, 1024,
          "Waiting + running sequences; beyond it RESOURCE_EXHAUSTED (0 = no cap).");
ABSL_FLAG(bool, enable_prefix_caching, true, "Reuse KV blocks of identical prompt prefixes.");
ABSL_FLAG(bool, overlap_steps, true,
          "Plan step N+1 and stream step N-1's tokens while step N runs on its own thread "
          "(same tokens either way).");
ABSL_FLAG(int, drain_grace_seconds, 30, "On SIGTERM, how long in-flight sequences may finish.");

namespace glm4v::worker {
namespace {

constexpr absl::Duration kGroupHealthPoll = absl::Milliseconds(100);

tp::TensorParallelOptions GroupOptions(const std::string& model_dir) {
  tp::TensorParallelOptions options;
  options.model_dir = model_dir;
  options.backend = absl::GetFlag(FLAGS_backend);
  options.tp_rank = absl::GetFlag(FLAGS_tp_rank);
  options.tp_size = absl::GetFlag(FLAGS_tp_size);
  options.decode_context_parallel = absl::GetFlag(FLAGS_decode_context_parallel);
  options.rendezvous = absl::GetFlag(FLAGS_tp_rendezvous);
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_tp_timeout_ms));
  options.connect_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_tp_connect_timeout_ms));
  options.collectives = absl::GetFlag(FLAGS_tp_collectives);
  // Validated by ValidateGroupFlags.
  options.kv_cache_dtype = ParseFloatDTypeFlag("kv_cache_dtype", absl::GetFlag(FLAGS_kv_cache_dtype))
                               .value_or(std::nullopt);
  // Validated by ValidateGroupFlags.
  ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype), &options.weights)
      .IgnoreError();
  return options;
}

// --cuda_graphs as DecoderRunnerOptions::decode_graphs (unset: the backend decides).
std::optional<bool> DecodeGraphsFlag() {
  const std::string mode = absl::GetFlag(FLAGS_cuda_graphs);
  if (mode == "on") return true;
  if (mode == "off") return false;
  return std::nullopt;
}

absl::Status ValidateGroupFlags() {
  const int size = absl::GetFlag(FLAGS_tp_size);
  const int rank = absl::GetFlag(FLAGS_tp_rank);
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tp_rank=", rank, " is outside a group of --tp_size=", size));
  }
  if (size > 1 && absl::GetFlag(FLAGS_tp_rendezvous).empty()) {
    return absl::InvalidArgumentError("--tp_size > 1 needs --tp_rendezvous=host:port (rank 0's)");
  }
  const int dcp = absl::GetFlag(FLAGS_decode_context_parallel);
  if (dcp < 0 || (size == 1 && dcp > 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--decode_context_parallel=", dcp, " needs --tp_size larger than the model's KV groups "
        "(it splits the tokens of a KV group among the ranks that share it); 0 = automatic"));
  }
  const std::string collectives = absl::GetFlag(FLAGS_tp_collectives);
  if (!tp::IsCollectivesMode(collectives)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tp_collectives=", collectives, ": expected auto, socket or nccl"));
  }
  if (collectives == "nccl" && absl::GetFlag(FLAGS_backend) != "cuda") {
    return absl::InvalidArgumentError("--tp_collectives=nccl needs --backend=cuda");
  }
  if (absl::GetFlag(FLAGS_tp_timeout_ms) <= 0 || absl::GetFlag(FLAGS_tp_connect_timeout_ms) <= 0) {
    return absl::InvalidArgumentError("--tp_timeout_ms and --tp_connect_timeout_ms must be > 0");
  }
  RETURN_IF_ERROR(
      ParseFloatDTypeFlag("kv_cache_dtype", absl::GetFlag(FLAGS_kv_cache_dtype)).status());
  WeightLoadOptions weights;
  RETURN_IF_ERROR(
      ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype), &weights));
  const std::string graphs = absl::GetFlag(FLAGS_cuda_graphs);
  if (graphs != "auto" && graphs != "on" && graphs != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--cuda_graphs=", graphs, ": expected auto, on or off"));
  }
  if (graphs == "on" && absl::GetFlag(FLAGS_backend) != "cuda") {
    return absl::InvalidArgumentError("--cuda_graphs=on needs --backend=cuda");
  }
  if (graphs == "on" && size > 1) {
    // Tensor-parallel steps run eagerly: their host collectives cannot be captured.
    return absl::InvalidArgumentError(
        "--cuda_graphs=on needs --tp_size=1 (tensor-parallel groups run eagerly)");
  }
  return absl::OkStatus();
}

// One GPU per rank: the CUDA backend is process-wide on device 0, so rank R of a group sees
// only GPU R (or the R-th of an existing multi-GPU CUDA_VISIBLE_DEVICES list; a single entry is
// taken as already pinned by whoever started this rank). Must run before the first CUDA call.
absl::Status PinGpuToRank() {
  const int size = absl::GetFlag(FLAGS_tp_size);
  const int rank = absl::GetFlag(FLAGS_tp_rank);
  if (absl::GetFlag(FLAGS_backend) != "cuda" || size == 1) return absl::OkStatus();
  const char* visible = getenv("CUDA_VISIBLE_DEVICES");
  std::string device = absl::StrCat(rank);
  if (visible != nullptr && *visible != '\0') {
    std::vector<std::string> list = absl::StrSplit(visible, ',', absl::SkipEmpty());
    if (list.size() == 1) return absl::OkStatus();
    if (rank >= static_cast<int>(list.size())) {
      return absl::InvalidArgumentError(absl::StrCat("--tp_rank=", rank, " but CUDA_VISIBLE_DEVICES=",
                                                     visible, " lists ", list.size(), " GPUs"));
    }
    device = list[rank];
  }
  setenv("CUDA_VISIBLE_DEVICES", device.c_str(), /*overwrite=*/1);
  LOG_INFO("pinned to one GPU").With("tp_rank", rank).With("CUDA_VISIBLE_DEVICES", device);
  return absl::OkStatus();
}

// Ranks > 0: no ports; follow rank 0 until it stops the group. SIGTERM does not end a follower
// at once (rank 0 still needs it to drain in-flight requests and then sends "stop"); if the group
// has not ended drain grace + 15 s after the signal, the follower gives up.
absl::Status RunFollower(const std::string& model_dir) {
  const tp::TensorParallelOptions options = GroupOptions(model_dir);
  LOG_INFO("tensor-parallel follower starting")
      .With("tp_rank", options.tp_rank)
      .With("tp_size", options.tp_size)
      .With("rendezvous", options.rendezvous);
  std::atomic<bool> done{false};
  std::thread watchdog([&done] {
    int signo = 0;
    while (!done.load()) {
      if (!ShutdownSignal::WaitFor(absl::Milliseconds(200), &signo)) continue;
      const absl::Time deadline =
          absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds) + 15);
      while (!done.load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
      if (!done.load()) {
        LOG_ERROR("rank 0 did not stop the group after the shutdown signal; exiting")
            .With("signal", signo);
        std::_Exit(1);
      }
    }
  });
  const absl::Status status = tp::RunFollowerRank(options);
  done.store(true);
  watchdog.join();
  if (status.ok()) LOG_INFO("tensor-parallel group stopped by rank 0");
  return status;
}

// Rank 0 of a group: flips the health to NOT_SERVING (for good) once the group is broken.
class GroupHealthMonitor {
 public:
  // Null runner (TP = 1): always healthy, nothing to watch.
  GroupHealthMonitor(const tp::TensorParallelModelRunner* runner, const Engine* engine,
                     ServiceHost* host)
      : runner_(runner), engine_(engine), host_(host) {}
  ~GroupHealthMonitor() {
    stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }
  // After host->Start() (SetServing needs the server).
  void Start() {
    if (runner_ != nullptr) thread_ = std::thread([this] { Loop(); });
  }
  // OK while the group works, else UNAVAILABLE with the reason.
  absl::Status health() const {
    if (!broken_.load()) return absl::OkStatus();
    return absl::UnavailableError("tensor-parallel group is broken; the worker needs a restart");
  }

 private:
  void Loop() {
    while (!stop_.WaitForNotificationWithTimeout(kGroupHealthPoll)) {
      absl::Status status = runner_->health();
      if (status.ok() && !engine_->Stats().healthy) {
        status = absl::UnavailableError("engine steps are failing");
      }
      if (status.ok()) continue;
      broken_.store(true);
      host_->SetServing(false);
      LOG_ERROR("tensor-parallel group broken: health NOT_SERVING, Submit UNAVAILABLE")
          .With("error", status);
      return;
    }
  }

  const tp::TensorParallelModelRunner* const runner_;
  const Engine* const engine_;
  ServiceHost* const host_;
  std::atomic<bool> broken_{false};
  absl::Notification stop_;
  std::thread thread_;
};

absl::Status Run() {
  RETURN_IF_ERROR(InitLogging());
  SetLogComponent("worker");
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir is required");
  RETURN_IF_ERROR(ValidateGroupFlags());
  RETURN_IF_ERROR(PinGpuToRank());
  const int tp_size = absl::GetFlag(FLAGS_tp_size);
  if (absl::GetFlag(FLAGS_tp_rank) > 0) return RunFollower(model_dir);

  std::unique_ptr<ModelRunner> runner;
  tp::TensorParallelModelRunner* group = nullptr;  // owned by the engine
  if (tp_size > 1) {
    LOG_INFO("tensor-parallel rank 0 starting")
        .With("tp_size", tp_size)
        .With("rendezvous", absl::GetFlag(FLAGS_tp_rendezvous));
    ASSIGN_OR_RETURN(std::unique_ptr<tp::TensorParallelModelRunner> tp_runner,
                     tp::StartTensorParallelGroup(GroupOptions(model_dir)));
    group = tp_runner.get();
    LOG_INFO("tensor-parallel group ready")
        .With("tp_size", tp_size)
        .With("decode_context_parallel", group->context_parallel_size())
        .With("collectives", std::string(group->collectives_backend()));
    runner = std::move(tp_runner);
  } else {
    ASSIGN_OR_RETURN(Backend * backend, GetServingBackend(absl::GetFlag(FLAGS_backend)));
    DecoderRunnerOptions options;
    ASSIGN_OR_RETURN(options.kv_dtype,
                     ParseFloatDTypeFlag("kv_cache_dtype", absl::GetFlag(FLAGS_kv_cache_dtype)));
    options.decode_graphs = DecodeGraphsFlag();
    RETURN_IF_ERROR(ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype),
                                         &options.weights));
    if (!absl::GetFlag(FLAGS_device_sampling)) options.device_sampling = false;
    options.max_batch = absl::GetFlag(FLAGS_max_num_seqs);
    options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
    ASSIGN_OR_RETURN(std::unique_ptr<DecoderModelRunner> decoder_runner,
                     DecoderModelRunner::Load(model_dir, backend, options));
    LOG_INFO("decoder loaded")
        .With("backend", std::string(backend->name()))
        .With("kv_cache_dtype", std::string(DTypeName(decoder_runner->kv_dtype())))
        .With("cuda_graphs", decoder_runner->decode_graphs())
        .With("device_sampling", decoder_runner->samples_on_device());
    runner = std::move(decoder_runner);
  }

  metrics::Registry& registry = metrics::DefaultRegistry();
  // Every rank of a group in rank 0's metrics (rank label), reported between steps.
  std::unique_ptr<RankMetrics> rank_metrics;
  if (group != nullptr) {
    ASSIGN_OR_RETURN(rank_metrics, RankMetrics::Register(&registry, tp_size));
    RankMetrics* sink = rank_metrics.get();
    group->SetRankStatsListener(
        [sink](const std::vector<tp::RankStats>& ranks) { sink->Update(ranks); },
        absl::Milliseconds(std::max(100, absl::GetFlag(FLAGS_tp_stats_interval_ms))));
  }
  EngineConfig config;
  config.num_kv_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  config.kv_cache_bytes = absl::GetFlag(FLAGS_kv_cache_bytes);
  config.kv_cache_memory_fraction = absl::GetFlag(FLAGS_kv_cache_fraction);
  if (config.kv_cache_memory_fraction > 0) config.kv_cache_bytes = 0;
  config.block_size = absl::GetFlag(FLAGS_block_size);
  config.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  config.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  config.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  config.overlap_steps = absl::GetFlag(FLAGS_overlap_steps);
  config.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  config.max_images_per_request = absl::GetFlag(FLAGS_max_images_per_request);
  config.max_pending_requests = absl::GetFlag(FLAGS_max_pending_requests);
  config.metrics_registry = &registry;
  // The runner moves into the engine: take its sizes first.
  const int64_t weight_bytes = runner->weight_bytes();
  const int64_t engine_runner_kv_bytes_per_block =
      runner->KvBlockShape(config.block_size).bytes_per_block(runner->kv_element_size());
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(config, std::move(runner)));
  const ModelConfig& model_config = engine->model_config();
  const int64_t kv_bytes =
      static_cast<int64_t>(engine->num_kv_blocks()) *
      engine_runner_kv_bytes_per_block;
  // The activation peak of a full step, from the same sizing code the deployment limits use.
  WeightLoadOptions weight_flags;
  ParseWeightDTypeFlag("weight_dtype", absl::GetFlag(FLAGS_weight_dtype), &weight_flags)
      .IgnoreError();  // validated at load
  const int64_t activation_bytes =
      DecoderActivationBytes(model_config, tp_size, config.max_num_batched_tokens,
                             config.max_num_seqs,
                             absl::GetFlag(FLAGS_backend) == "cuda" ? DType::kBF16 : DType::kF32,
                             weight_flags.quantization)
          .value_or(0);
  LOG_INFO("engine ready")
      .With("model_dir", model_dir)
      .With("tp_size", tp_size)
      .With("weight_bytes", weight_bytes)
      .With("kv_cache_bytes", kv_bytes)
      .With("activation_peak_bytes", activation_bytes)
      .With("budget_bytes", weight_bytes + kv_bytes + activation_bytes)
      .With("vocab", model_config.padded_vocab_size)
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
  // TLS on the gRPC port; with --tls_ca only callers with a certificate it signed (mTLS).
  ASSIGN_OR_RETURN(host_options.credentials, ServerCredentialsFromFlags());
  ServiceHost host(host_options);
  GroupHealthMonitor monitor(group, engine.get(), &host);  // stops before host and engine go
  WorkerService service(engine.get(), &host.gate(), tp_size,
                        [&monitor]() { return monitor.health(); });
  host.AddService(&service);
  RETURN_IF_ERROR(host.Start());
  monitor.Start();
  // In-flight streams have had the grace period; whatever is left is aborted (KV freed).
  host.ServeUntilShutdown(
      [&engine](absl::Time) { engine->Shutdown(Engine::ShutdownMode::kAbort); });
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v::worker

int main(int argc, char** argv) {
  glm4v::ShutdownSignal::Install();
  absl::SetProgramUsageMessage("GLM-4V decoder worker (any rank of a tensor-parallel group)");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = glm4v::worker::Run();
  if (!status.ok()) {
    LOG_ERROR("worker failed").With("error", status);
    return 1;
  }
  return 0;
}
