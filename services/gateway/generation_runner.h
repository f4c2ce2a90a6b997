// One public request end to end: validate, admit, build the prompt, encode images, pick a
// worker, stream its tokens through the incremental detokenizer and the stop-string matcher,
// and report usage and timings. Shared by Generate (which collects the chunks) and
// GenerateStream (which forwards them).
#pragma once

#include <functional>
#include <string>

#include "common/model_config.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "protos/glm4v/v1/glm4v.pb.h"
#include "services/gateway/admission_controller.h"
#include "services/gateway/gateway_metrics.h"
#include "services/gateway/gateway_options.h"
#include "services/gateway/prompt_builder.h"
#include "services/gateway/tokenizer/tokenizer.h"
#include "services/gateway/vision_client.h"
#include "services/gateway/worker_pool.h"

namespace glm4v {

class GenerationRunner {
 public:
  struct Deps {  // nothing owned
    const GatewayOptions* options;
    const ModelConfig* model_config;
    const tokenizer::Tokenizer* tokenizer;
    const PromptBuilder* prompts;
    VisionClient* vision;  // null for a text-only model
    WorkerPool* workers;
    AdmissionController* admission;
    const GatewayMetrics* metrics;
  };

  // Receives each chunk; the last one has finish_reason set. Returns false when the caller is
  // gone (the worker call is then cancelled).
  using Sink = std::function<bool(v1::GenerateStreamResponse& chunk)>;

  explicit GenerationRunner(Deps deps) : deps_(deps) {}

  grpc::Status Run(grpc::ServerContext* context, const v1::GenerateRequest& request,
                   const std::string& request_id, const Sink& sink) const;

  // The served model's limits (GetModelInfo, /v1/models), with the workers' context length as
  // last reported.
  v1::ModelInfo ModelInfo() const;

 private:
  Deps deps_;
};

// The caller's deadline, capped by the gateway's request timeout.
absl::Time RequestDeadline(const grpc::ServerContext& context, absl::Duration request_timeout);

}  // namespace glm4v
