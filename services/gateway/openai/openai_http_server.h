// OpenAI-compatible HTTP front of the gateway: POST /v1/chat/completions and /v1/completions
// (JSON or server-sent events, n choices), GET /v1/models, GET /v1/models/{id}, GET /health;
// over TLS when given a certificate. The Authorization header travels to the gRPC service as
// metadata, so API keys are checked in one place; /health stays open.
//
// Every request becomes a call on `channel`, the gateway's own Glm4vService (the gateway passes
// grpc::Server::InProcessChannel), so validation, admission control, metrics and drain are
// exactly those of the gRPC API. gRPC statuses map to HTTP codes as in openai_error.h.
//
//   auto http = OpenAiHttpServer::Start(server->InProcessChannel(grpc::ChannelArguments()),
//                                       {.host = "0.0.0.0", .port = 8080, .model_name = "glm-4v-9b"});
//   ... http->port() ...
//   http->Stop();  // after the gRPC drain: waits for in-flight HTTP requests to finish
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "services/common/reloadable_certificate.h"
#include "services/gateway/auth/api_key_store.h"
#include "services/gateway/openai/image_fetcher.h"

namespace glm4v::openai {

class OpenAiHttpServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 0;  // 0: an ephemeral port, see port()
    // Reported by /v1/models and in every response; requests naming another model get 404.
    std::string model_name = "glm-4v-9b";
    // Larger bodies get 413 before they are read (images travel base64-inflated by 4/3).
    size_t max_body_bytes = 64u << 20;
    // Each open connection (and each stream) holds one thread for its duration.
    int num_threads = 64;
    int max_choices = 16;        // largest n
    bool accepts_tools = false;  // GLM-4-9B-chat models: tools / tool_choice
    // Set: image_url parts may be http(s) URLs, fetched under these limits.
    std::optional<ImageFetcher::Options> image_fetch;
    // Set: HTTPS with this (reloadable) certificate.
    std::shared_ptr<ReloadableCertificate> tls;
    // Set: every OpenAI endpoint needs a key of this store, checked here once per HTTP request,
    // whose concurrency slot is held for the request's whole life (all n choices); the gRPC
    // calls then carry `internal_token` (required with a store, see auth/internal_caller.h).
    // `on_key_refused(key_id, code)` counts the refusals of known keys (their limit).
    const auth::ApiKeyStore* api_keys = nullptr;
    std::string internal_token;
    std::function<void(const std::string& key_id, const char* code)> on_key_refused;
  };

  static absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> Start(
      std::shared_ptr<grpc::Channel> channel, Options options);

  ~OpenAiHttpServer();  // Stop()
  OpenAiHttpServer(const OpenAiHttpServer&) = delete;
  OpenAiHttpServer& operator=(const OpenAiHttpServer&) = delete;

  int port() const { return port_; }

  // Closes the listening socket and waits for in-flight requests. Idempotent.
  void Stop();

 private:
  struct Impl;
  OpenAiHttpServer(std::unique_ptr<Impl> impl, int port);

  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace glm4v::openai
