// The gateway process: public glm4v.v1.Glm4vService on --grpc_port, metrics on --metrics_port
// (see docs/SERVICES.md).
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics/registry.h"
#include "common/model_config.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "services/common/reload_watcher.h"
#include "services/common/reloadable_certificate.h"
#include "services/common/service_host.h"
#include "services/common/tls_flags.h"
#include "services/common/shutdown_signal.h"
#include "services/gateway/admission_controller.h"
#include "services/gateway/auth/api_key_store.h"
#include "services/gateway/auth/internal_caller.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/gateway_options.h"
#include "services/gateway/generation_runner.h"
#include "services/gateway/glm4v_service.h"
#include "services/gateway/openai/openai_http_server.h"
#include "services/gateway/prompt_builder.h"
#include "services/gateway/tokenizer/chat_template.h"
#include "services/gateway/tokenizer/tokenizer.h"
#include "services/gateway/vision_client.h"
#include "services/gateway/worker_discovery.h"
#include "services/gateway/worker_pool.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to bind the gRPC and metrics ports to.");
ABSL_FLAG(int, grpc_port, 50051, "gRPC port (public glm4v.v1.Glm4vService).");
ABSL_FLAG(int, http_port, -1,
          "OpenAI-compatible HTTP API port (/v1/chat/completions, /v1/models); 0 = ephemeral, "
          "-1 = off.");
ABSL_FLAG(std::string, served_model_name, "glm-4v-9b",
          "Model name reported by the OpenAI-style API; requests naming another get 404.");
ABSL_FLAG(int, metrics_port, 9480, "HTTP port of /metrics and /healthz; -1 disables.");
ABSL_FLAG(std::string, vision_address, "127.0.0.1:50061",
          "Vision service host:port (unused for a text-only model).");
ABSL_FLAG(std::vector<std::string>, worker_addresses, {"127.0.0.1:50071"},
          "Decoder workers (data-parallel replicas), host:port[,host:port...]; with "
          "--worker_discovery only the initial members (may be empty).");
ABSL_FLAG(std::string, worker_discovery, "",
          "Also find workers at run time: dns:///NAME:PORT (every address NAME resolves to, "
          "e.g. the worker StatefulSet's headless Service) or file:///PATH (host:port per line, "
          "re-read on every poll). New ones join, vanished ones drain; an empty answer keeps "
          "the current workers.");
ABSL_FLAG(int, worker_poll_interval_ms, 250,
          "How often the gateway asks every worker for its stats (health, load, KV usage) and "
          "re-resolves --worker_discovery.");
ABSL_FLAG(std::string, routing, "cache_aware",
          "How a request picks a worker: cache_aware (expected prefix-cache hits against load "
          "and KV usage) or affinity_hash (least loaded unless the worker a prompt hash names "
          "is close).");
ABSL_FLAG(double, routing_load_token_cost, 256,
          "cache_aware: prompt rows one running or waiting sequence on a worker is worth.");
ABSL_FLAG(std::string, model_dir, "", "Checkpoint directory (config.json: special ids, sizes).");
ABSL_FLAG(std::string, tokenizer_path, "",
          "tokenizer.model; a tokenizer_config.json next to it overrides special ids. "
          "Default: <model_dir>/tokenizer.model.");
ABSL_FLAG(int, max_queue, 256, "Requests waiting for admission; beyond it RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_inflight, 64, "Requests processed at once (past admission).");
ABSL_FLAG(int, max_prompt_tokens, 0,
          "Longest prompt after the image splice; 0: the model's seq_length - 1. The decoder "
          "workers' context length (their KV capacity) caps it further.");
ABSL_FLAG(int, max_images_per_request, 1, "Most images per request.");
ABSL_FLAG(int64_t, max_image_bytes, 16 << 20, "Largest encoded image.");
ABSL_FLAG(int, default_max_tokens, 512, "max_tokens when a request does not set it.");
ABSL_FLAG(int, max_max_tokens, 8192, "Largest max_tokens a request may ask for.");
ABSL_FLAG(int, request_timeout_seconds, 300, "Cap on a request's deadline.");
ABSL_FLAG(int, vision_timeout_seconds, 60,
          "Cap on the vision service's time for a request's images (a CPU-only deployment of "
          "the full tower needs minutes).");
ABSL_FLAG(std::string, vision_feature_dtype, "float32",
          "Feature dtype asked of the vision service: float32 or bfloat16.");
ABSL_FLAG(std::string, api_keys_file, "",
          "API keys the public gRPC and HTTP APIs require (Authorization: Bearer KEY), one per "
          "line with optional id=NAME max_concurrent=N; re-read on SIGHUP and when the file "
          "changes. Empty: no authentication. Health, /metrics and /healthz stay open.");
ABSL_FLAG(int, api_key_max_concurrent, 0,
          "Requests in flight per API key when its line sets no max_concurrent; 0 = unlimited.");
ABSL_FLAG(int, config_poll_interval_ms, 1000,
          "How often the API keys and TLS files are checked for changes.");
ABSL_FLAG(bool, fetch_image_urls, true,
          "OpenAI image_url parts may be http(s) URLs, fetched by the gateway (limits below); "
          "false: data URLs only.");
ABSL_FLAG(bool, allow_private_image_urls, false,
          "Let image URLs reach private, loopback and link-local addresses (off: SSRF guard).");
ABSL_FLAG(int, image_fetch_timeout_seconds, 10, "Time limit of one image URL fetch.");
ABSL_FLAG(int, image_fetch_max_redirects, 3, "Redirects an image URL may take.");
ABSL_FLAG(std::string, image_fetch_ca_file, "",
          "PEM CA bundle trusted for https image URLs instead of the system CAs (empty: the "
          "system CAs).");
ABSL_FLAG(int, max_choices, 16, "Largest n (choices per prompt) of an OpenAI request.");
ABSL_FLAG(int, drain_grace_seconds, 30, "On SIGTERM, how long in-flight requests may finish.");

namespace glm4v {
namespace {

absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> LoadTokenizer(const std::string& path) {
  const std::string dir = path.substr(0, path.find_last_of('/') + 1);
  const std::string config = dir + "tokenizer_config.json";
  const bool has_config = static_cast<bool>(std::ifstream(config));
  return tokenizer::Tokenizer::LoadFromFiles(path, has_config ? config : "");
}

// One line per reload that happened or failed (a failed one keeps what was in use).
void LogReload(const char* what, const absl::StatusOr<bool>& reloaded) {
  if (!reloaded.ok()) {
    LOG_WARN("reload refused; keeping the previous ones").With("what", what).With(
        "error", reloaded.status());
  } else if (*reloaded) {
    LOG_INFO("reloaded").With("what", what);
  }
}

absl::Status Run() {
  RETURN_IF_ERROR(InitLogging());
  SetLogComponent("gateway");
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  if (model_dir.empty()) return absl::InvalidArgumentError("--model_dir is required");
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  std::string tokenizer_path = absl::GetFlag(FLAGS_tokenizer_path);
  if (tokenizer_path.empty()) tokenizer_path = model_dir + "/tokenizer.model";
  ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, LoadTokenizer(tokenizer_path));
  ASSIGN_OR_RETURN(tokenizer::ChatTemplate chat, tokenizer::ChatTemplate::Create(tok.get()));
  if (config.has_vision) {
    ASSIGN_OR_RETURN(tokenizer::TokenId boi, tok->SpecialId("<|begin_of_image|>"));
    ASSIGN_OR_RETURN(tokenizer::TokenId eoi, tok->SpecialId("<|end_of_image|>"));
    if (boi != config.boi_token_id || eoi != config.eoi_token_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tokenizer ", tokenizer_path, " has image ids ", boi, "/", eoi, " but ", model_dir,
          "/config.json says ", config.boi_token_id, "/", config.eoi_token_id));
    }
  }
  internal::FeatureDType feature_dtype;
  if (absl::GetFlag(FLAGS_vision_feature_dtype) == "float32") {
    feature_dtype = internal::FEATURE_DTYPE_FLOAT32;
  } else if (absl::GetFlag(FLAGS_vision_feature_dtype) == "bfloat16") {
    feature_dtype = internal::FEATURE_DTYPE_BFLOAT16;
  } else {
    return absl::InvalidArgumentError("--vision_feature_dtype must be float32 or bfloat16");
  }
  if (absl::GetFlag(FLAGS_vision_timeout_seconds) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("--vision_timeout_seconds must be positive, got ",
                                                   absl::GetFlag(FLAGS_vision_timeout_seconds)));
  }
  std::vector<std::string> worker_addresses = absl::GetFlag(FLAGS_worker_addresses);
  worker_addresses.erase(std::remove(worker_addresses.begin(), worker_addresses.end(), ""),
                         worker_addresses.end());
  const std::string discovery = absl::GetFlag(FLAGS_worker_discovery);
  if (!discovery.empty()) RETURN_IF_ERROR(ValidateDiscoverySpec(discovery));
  if (worker_addresses.empty() && discovery.empty()) {
    return absl::InvalidArgumentError("--worker_addresses is empty and no --worker_discovery");
  }
  WorkerPool::Options pool_options;
  pool_options.addresses = worker_addresses;
  pool_options.discovery = discovery;
  if (absl::GetFlag(FLAGS_worker_poll_interval_ms) <= 0) {
    return absl::InvalidArgumentError("--worker_poll_interval_ms must be positive");
  }
  pool_options.poll_interval = absl::Milliseconds(absl::GetFlag(FLAGS_worker_poll_interval_ms));
  ASSIGN_OR_RETURN(pool_options.routing.policy, ParseRoutingPolicy(absl::GetFlag(FLAGS_routing)));
  pool_options.routing.load_token_cost = absl::GetFlag(FLAGS_routing_load_token_cost);
  if (!(pool_options.routing.load_token_cost >= 0)) {
    return absl::InvalidArgumentError("--routing_load_token_cost must be >= 0");
  }

  GatewayOptions options;
  options.model_name = absl::GetFlag(FLAGS_served_model_name);
  options.accepts_images = config.has_vision;
  options.max_queue = std::max(0, absl::GetFlag(FLAGS_max_queue));
  options.max_inflight = std::max(1, absl::GetFlag(FLAGS_max_inflight));
  // Default: the checkpoint's own context (8K for GLM-4V-9B, 128K / 1M for the chat models);
  // the workers' KV capacity caps it further per request (PromptBuilder).
  options.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens) > 0
                                  ? absl::GetFlag(FLAGS_max_prompt_tokens)
                                  : std::max(1, config.seq_length - 1);
  // Room for a long prompt's text (~4 bytes per token) and ids (<= 5 bytes each on the wire).
  options.max_text_bytes =
      std::max<int64_t>(options.max_text_bytes, int64_t{8} * options.max_prompt_tokens);
  options.max_images_per_request = absl::GetFlag(FLAGS_max_images_per_request);
  options.vocab_size = config.padded_vocab_size;
  options.max_image_bytes = absl::GetFlag(FLAGS_max_image_bytes);
  options.default_max_tokens = std::max(1, absl::GetFlag(FLAGS_default_max_tokens));
  options.max_max_tokens = std::max(1, absl::GetFlag(FLAGS_max_max_tokens));
  options.request_timeout = absl::Seconds(absl::GetFlag(FLAGS_request_timeout_seconds));
  options.vision_timeout = absl::Seconds(absl::GetFlag(FLAGS_vision_timeout_seconds));

  // TLS (and mTLS) to the vision service and the workers, before any channel is made.
  RETURN_IF_ERROR(InstallBackendCredentialsFromFlags());
  metrics::Registry& registry = metrics::DefaultRegistry();
  ASSIGN_OR_RETURN(GatewayMetrics gateway_metrics, GatewayMetrics::Register(&registry));
  // A text-only model has no vision service: requests with images are refused up front.
  std::unique_ptr<VisionClient> vision;
  if (config.has_vision) {
    vision = std::make_unique<VisionClient>(absl::GetFlag(FLAGS_vision_address), feature_dtype,
                                            &gateway_metrics);
  }
  WorkerPool workers(pool_options, &gateway_metrics);
  AdmissionController admission(options.max_inflight, options.max_queue);
  PromptBuilder prompts(tok.get(), &chat, &config, options.max_prompt_tokens);
  GenerationRunner runner(
      {&options, &config, tok.get(), &prompts, vision.get(), &workers, &admission,
       &gateway_metrics});

  if (absl::GetFlag(FLAGS_api_key_max_concurrent) < 0) {
    return absl::InvalidArgumentError("--api_key_max_concurrent must be >= 0");
  }
  if (absl::GetFlag(FLAGS_config_poll_interval_ms) <= 0) {
    return absl::InvalidArgumentError("--config_poll_interval_ms must be positive");
  }
  std::unique_ptr<auth::ApiKeyStore> api_keys;
  if (!absl::GetFlag(FLAGS_api_keys_file).empty()) {
    ASSIGN_OR_RETURN(api_keys,
                     auth::ApiKeyStore::Load({absl::GetFlag(FLAGS_api_keys_file),
                                              absl::GetFlag(FLAGS_api_key_max_concurrent)}));
    LOG_INFO("api keys loaded").With("keys", api_keys->size());
  }
  // The HTTP port's certificate (the gRPC port watches its files itself).
  std::shared_ptr<ReloadableCertificate> http_tls;
  const TlsServerFiles tls_files = ServerTlsFilesFromFlags();
  if (tls_files.enabled() && absl::GetFlag(FLAGS_http_port) >= 0) {
    ASSIGN_OR_RETURN(http_tls, ReloadableCertificate::Load(tls_files.cert, tls_files.key));
    // --tls_ca means mutual TLS on every port the gateway serves, HTTPS included.
    if (!tls_files.client_ca.empty()) {
      RETURN_IF_ERROR(http_tls->RequireClientCertificates(tls_files.client_ca));
    }
  }
  // Keys and certificates change without a restart: checked on every poll and at SIGHUP.
  ReloadWatcher reloads(absl::Milliseconds(absl::GetFlag(FLAGS_config_poll_interval_ms)),
                        [&api_keys, &http_tls] {
                          if (api_keys != nullptr) {
                            LogReload("api keys", api_keys->ReloadIfChanged());
                          }
                          if (http_tls != nullptr) {
                            LogReload("https certificate", http_tls->ReloadIfChanged());
                          }
                        });

  ServiceHost::Options host_options;
  host_options.component = "gateway";
  host_options.health_services = {"glm4v.v1.Glm4vService"};
  host_options.bind_host = absl::GetFlag(FLAGS_host);
  host_options.grpc_port = absl::GetFlag(FLAGS_grpc_port);
  host_options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  host_options.drain_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_grace_seconds));
  host_options.max_receive_message_bytes = static_cast<int>(std::min<int64_t>(
      options.max_image_bytes * options.max_images_per_request + 2 * options.max_text_bytes +
          (4 << 20),
      1 << 30));
  host_options.registry = &registry;
  ASSIGN_OR_RETURN(host_options.credentials, ServerCredentialsFromFlags());
  // Server reflection on the public port: grpcurl and GUI gRPC clients discover the API.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ServiceHost host(host_options);
  // The HTTP front checks keys itself (one concurrency slot per HTTP request, whatever its n)
  // and tells its in-process calls apart by this token.
  const std::string internal_token = api_keys != nullptr ? auth::NewInternalToken() : "";
  Glm4vServiceImpl service(&runner, &host.gate(), &gateway_metrics, api_keys.get(),
                           internal_token);
  host.AddService(&service);
  RETURN_IF_ERROR(host.Start());
  // The HTTP front speaks to this very server through an in-process channel, so OpenAI
  // requests take exactly the gRPC path (validation, admission, metrics).
  std::unique_ptr<openai::OpenAiHttpServer> http;
  if (absl::GetFlag(FLAGS_http_port) >= 0) {
    openai::OpenAiHttpServer::Options http_options;
    http_options.host = absl::GetFlag(FLAGS_host);
    http_options.port = absl::GetFlag(FLAGS_http_port);
    http_options.model_name = absl::GetFlag(FLAGS_served_model_name);
    http_options.max_body_bytes = static_cast<size_t>(host_options.max_receive_message_bytes);
    http_options.max_choices = std::max(1, absl::GetFlag(FLAGS_max_choices));
    // GLM-4-9B-chat (no vision tower) was trained for function calling; GLM-4V-9B was not.
    http_options.accepts_tools = !config.has_vision;
    if (absl::GetFlag(FLAGS_fetch_image_urls) && config.has_vision) {
      openai::ImageFetcher::Options fetch;
      fetch.max_bytes = options.max_image_bytes;
      fetch.timeout = absl::Seconds(std::max(1, absl::GetFlag(FLAGS_image_fetch_timeout_seconds)));
      fetch.max_redirects = std::max(0, absl::GetFlag(FLAGS_image_fetch_max_redirects));
      fetch.allow_private_addresses = absl::GetFlag(FLAGS_allow_private_image_urls);
      fetch.ca_file = absl::GetFlag(FLAGS_image_fetch_ca_file);
      http_options.image_fetch = fetch;
    }
    http_options.tls = http_tls;
    http_options.api_keys = api_keys.get();
    http_options.internal_token = internal_token;
    http_options.on_key_refused = [&gateway_metrics](const std::string& key_id, const char* code) {
      gateway_metrics.key_requests->WithLabels({key_id, code}).Increment();
    };
    ASSIGN_OR_RETURN(http, openai::OpenAiHttpServer::Start(
                               host.server()->InProcessChannel(grpc::ChannelArguments()),
                               http_options));
    LOG_INFO("openai http ready").With("port", http->port());
  }
  LOG_INFO("gateway ready")
      .With("vision", vision != nullptr ? vision->address() : std::string("none (text-only model)"))
      .With("max_prompt_tokens", options.max_prompt_tokens)
      .With("workers", static_cast<int>(workers.size()))
      .With("worker_discovery", discovery)
      .With("routing", absl::GetFlag(FLAGS_routing))
      .With("vocab", static_cast<int>(tok->vocab_size()));
  host.ServeUntilShutdown();
  // Only after the gRPC server is down: Stop() waits for in-flight HTTP handlers, which finish
  // once their in-process calls end.
  if (http != nullptr) http->Stop();
  return absl::OkStatus();
}

}  // namespace
}  // namespace glm4v

int main(int argc, char** argv) {
  glm4v::ShutdownSignal::Install();
  glm4v::ReloadWatcher::InstallSighupHandler();
  absl::SetProgramUsageMessage("GLM-4V gateway (public gRPC API)");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = glm4v::Run();
  if (!status.ok()) {
    LOG_ERROR("gateway failed").With("error", status);
    return 1;
  }
  return 0;
}
