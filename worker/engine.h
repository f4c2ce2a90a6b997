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
#include "worker/step_executor.h"
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

  // `block_tokens`: tokens of a sequence per block (block_size x the runner's context parallel
  // size).
  Engine(const EngineConfig& config, std::unique_ptr<ModelRunner> runner, int num_blocks,
         int block_tokens, int max_model_len);

  // A model step from launch to completion; the executor thread runs it (ExecuteLaunched)
  // while the loop thread schedules the next one.
  struct LaunchedStep {
    SchedulerOutput plan;
    DecoderBatch batch;             // the chunks' inputs, built when scheduled
    // Per chunk: the row of its input that is a pending token (the step in flight samples
    // it; Launch writes it in), or -1.
    std::vector<int> pending_rows;
    SamplingBatchHost sampling;     // device sampling: one row per sampled chunk
    std::vector<int> sampled_chunks;  // chunk index of each sampling row
    absl::Time scheduled, launched;
    // Written on the executor thread, read after StepExecutor::Wait.
    absl::Time executed;
    std::vector<absl::Status> statuses;  // per chunk
    std::vector<float*> logits_rows;     // host sampling: each sampled chunk's logits row
    std::vector<DecoderOutput> outputs;  // keeps logits_rows alive
    std::vector<SampledToken> tokens;    // per sampled chunk once sampled
  };
  // What a completed step means for one request.
  struct StepOutcome {
    std::string request_id;
    TokenEvent event;
    absl::Status error;     // the request failed
    bool finished = false;  // event.finish_reason set, or error
  };

  absl::StatusOr<SequencePrompt> BuildPrompt(const EngineRequest& request) const;
  void Loop();
  // One turn of the step loop: schedules step N+1, completes step N (in flight), launches N+1
  // without the requests that ended in N, then streams N's tokens. Without overlap_steps each
  // step is completed right after its launch.
  void RunStep();
  // The next step's chunks (their blocks reserved) and inputs, built while the step in flight
  // runs; null when nothing can run.
  std::unique_ptr<LaunchedStep> ScheduleStep();
  // Drops the chunks of requests that ended (`ended`) from a scheduled step.
  static void DropChunks(const absl::flat_hash_set<std::string>& ended, LaunchedStep* step);
  // Writes in the tokens that were pending when the step was built, adds its sampling rows,
  // advances its sequences past its rows (a sampled row becomes a pending token) and starts it
  // on the executor.
  void Launch(std::unique_ptr<LaunchedStep> step);
  // Runs on the executor thread: the chunks as one model step; on failure retries them one at a
  // time so a request that breaks the model fails alone.
  void ExecuteLaunched(LaunchedStep* step);
  // Waits for the step in flight, samples its rows on the host unless the runner did, and
  // applies its tokens to the sequences; returns each chunk's outcome plus the cancellations
  // that waited for it.
  std::vector<StepOutcome> CompleteInFlight();
  // Finishes the ended requests and queues every event for streaming.
  void Deliver(std::vector<StepOutcome> outcomes);
  bool InFlight(const Sequence* seq) const;
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
  std::unique_ptr<LaunchedStep> in_flight_;
  absl::Time last_completed_ = absl::InfinitePast();  // when the last step completed
  // Cancels of requests in the step in flight: applied when it completes (its chunks point at
  // them).
  std::vector<std::string> deferred_cancels_;
  absl::Status executor_bound_;  // BindCallingThread's result (executor thread only)
  StepExecutor executor_;        // declared last: its thread starts when the rest is built

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
