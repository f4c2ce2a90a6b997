// The decoder engine: admits requests, runs the continuous-batching step loop on a background
// thread (schedule -> model step -> sample -> stream tokens), and frees each request's KV
// blocks the moment it finishes, is cancelled or fails. The gRPC worker service wraps this.
//
//   auto engine = Engine::Create(config, std::move(runner)).value();
//   auto stream = engine->Submit(request);           // INVALID_ARGUMENT etc. up front
//   while (true) {
//     absl::StatusOr<TokenEvent> event = (*stream)->Next(absl::Milliseconds(100));
//     if (absl::IsDeadlineExceeded(event.status())) continue;   // poll for RPC cancellation
//     if (!event.ok()) break;                                    // OUT_OF_RANGE = done
//     ...send event...; if (event->finish_reason != FinishReason::kNone) break;
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tensor.h"
#include "worker/block_manager.h"
#include "worker/engine_config.h"
#include "worker/engine_metrics.h"
#include "worker/engine_stats.h"
#include "worker/model_runner.h"
#include "worker/output_streamer.h"
#include "worker/request_stream.h"
#include "worker/sampler.h"
#include "worker/scheduler.h"
#include "worker/sequence.h"

namespace glm4v::worker {

struct EngineImage {
  // f32 (or bf16) [rows, hidden]: boi row, patch rows, eoi row, already scaled.
  Tensor features;
  // Identifies the picture for prefix reuse (e.g. a digest of the file); empty = the engine
  // hashes the feature bytes.
  std::string content_hash;
};

struct EngineRequest {
  std::string request_id;
  // Prompt with one <|begin_of_image|> <|endoftext|> <|end_of_image|> triple per image.
  std::vector<int32_t> prompt_token_ids;
  std::vector<EngineImage> images;  // in placeholder order
  SamplingParams sampling;
};

class Engine {
 public:
  enum class ShutdownMode { kDrain, kAbort };

  // Sizes and allocates the KV cache, then starts the step loop.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config,
                                                        std::unique_ptr<ModelRunner> runner);
  ~Engine();  // Shutdown(kAbort) unless already shut down

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. INVALID_ARGUMENT: bad ids, images or sampling parameters,
  // or a prompt that can never fit (max_model_len or the whole KV cache); ALREADY_EXISTS: the
  // id is live; RESOURCE_EXHAUSTED: too many pending requests; UNAVAILABLE: shutting down.
  absl::StatusOr<std::shared_ptr<RequestStream>> Submit(EngineRequest request);
  // Cancels a live request (its stream ends with CANCELLED); false if the id is not live.
  bool Cancel(const std::string& request_id);
  EngineStats Stats() const;
  // Stops admitting. kDrain finishes every admitted request first; kAbort cancels them.
  // Returns when the step loop has exited. Idempotent.
  void Shutdown(ShutdownMode mode = ShutdownMode::kDrain);

  const ModelConfig& model_config() const { return runner_->config(); }
  int max_model_len() const { return max_model_len_; }
  int num_kv_blocks() const { return block_manager_.num_blocks(); }
  int kv_block_size() const { return block_manager_.block_size(); }

 private:
  struct ActiveRequest {
    std::unique_ptr<Sequence> seq;
    std::shared_ptr<RequestStream> stream;
    bool first_event_sent = false;
    bool prompt_counted = false;
  };

  Engine(const EngineConfig& config, std::unique_ptr<ModelRunner> runner, int num_blocks,
         int max_model_len);

  absl::StatusOr<SequencePrompt> BuildPrompt(const EngineRequest& request) const;
  void Loop();
  void Step();
  // Runs the chunks as one model step; on failure retries them one at a time so a request that
  // breaks the model fails alone. Fills a status per chunk and, for sampled chunks, a logits
  // row (host sampling) or the token (a runner that samples on the device).
  void ExecuteChunks(const SchedulerOutput& out, std::vector<absl::Status>* statuses,
                     std::vector<float*>* logits_rows, std::vector<DecoderOutput>* keep,
                     std::vector<SampledToken>* tokens);
  SequenceChunk BuildChunk(const ScheduledChunk& chunk) const;
  // Fills the first-event fields the first time a request emits anything.
  void StampFirstEvent(ActiveRequest* request, TokenEvent* event);
  // Ends a request: frees its blocks, queues `event` (finish reason set) or `error` for its
  // stream.
  void Finish(const std::string& request_id, TokenEvent event, absl::Status error);
  // Hands the queued stream items to the streaming thread.
  void SendOutbox();
  void PublishStats();

  const EngineConfig config_;
  const std::unique_ptr<ModelRunner> runner_;
  const int max_model_len_;    // config or model limit
  const int max_total_tokens_;  // min(max_model_len, cache capacity)
  std::unique_ptr<EngineMetrics> metrics_;

  // --- Step-loop state (only the loop thread touches these after Create) ---
  KvBlockManager block_manager_;
  Scheduler scheduler_;
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveRequest>> active_;
  EngineStats loop_stats_;
  std::vector<OutputStreamer::Item> outbox_;  // this step's responses, in order
  OutputStreamer streamer_;

  // --- Shared with callers ---
  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;
  std::vector<std::unique_ptr<ActiveRequest>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancels_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> live_ids_ ABSL_GUARDED_BY(mu_);
  uint64_t next_arrival_index_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool abort_ ABSL_GUARDED_BY(mu_) = false;
  EngineStats published_stats_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;
  std::thread loop_thread_;
};

}  // namespace glm4v::worker
