#include "worker/engine.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "model/image_splice.h"

namespace glm4v::worker {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

const char* OutcomeName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kNone:
      break;
  }
  return "failed";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config,
                                                       std::unique_ptr<ModelRunner> runner) {
  if (runner == nullptr) return absl::InvalidArgumentError("no model runner");
  if (config.block_size <= 0 || config.max_num_seqs <= 0 || config.max_num_batched_tokens <= 0) {
    return absl::InvalidArgumentError(
        "block_size, max_num_seqs and max_num_batched_tokens must be positive");
  }
  KvCacheShape shape = runner->KvBlockShape(config.block_size);
  const int64_t bytes_per_block = shape.bytes_per_block(runner->kv_element_size());
  int64_t num_blocks = config.num_kv_blocks;
  if (num_blocks <= 0 && config.kv_cache_bytes > 0) {
    num_blocks = config.kv_cache_bytes / bytes_per_block;
  }
  if (num_blocks <= 0 && config.kv_cache_memory_fraction > 0) {
    const int64_t capacity = runner->kv_memory_capacity_bytes();
    if (capacity <= 0) {
      return absl::InvalidArgumentError(
          "kv_cache_memory_fraction needs a runner that knows its memory; set kv_cache_bytes");
    }
    num_blocks = static_cast<int64_t>(config.kv_cache_memory_fraction *
                                      static_cast<double>(capacity)) /
                 bytes_per_block;
  }
  if (num_blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "KV cache budget holds no block of %d bytes: set num_kv_blocks, kv_cache_bytes or "
        "kv_cache_memory_fraction",
        bytes_per_block));
  }
  if (num_blocks > (1 << 30)) return absl::InvalidArgumentError("too many KV blocks");
  shape.num_blocks = static_cast<int>(num_blocks);
  RETURN_IF_ERROR(runner->AllocateKvCache(shape));

  // Unset: the model's own context (seq_length; 1,048,576 for GLM-4-9B-chat-1M), capped by
  // what this worker's KV cache holds, so the limit it reports is one a prompt can reach.
  // The engine's blocks count tokens of a sequence: with decode context parallelism a physical
  // block of every rank of a KV group holds block_size of its tokens, block_size * dcp in all.
  const int block_tokens = config.block_size * std::max(1, runner->context_parallel_size());
  const int64_t kv_tokens = static_cast<int64_t>(shape.num_blocks) * block_tokens;
  const int max_model_len =
      config.max_model_len > 0
          ? config.max_model_len
          : static_cast<int>(std::min<int64_t>(runner->config().seq_length, kv_tokens));
  std::unique_ptr<Engine> engine(
      new Engine(config, std::move(runner), shape.num_blocks, block_tokens, max_model_len));
  if (config.metrics_registry != nullptr) {
    ASSIGN_OR_RETURN(engine->metrics_, EngineMetrics::Register(config.metrics_registry));
  }
  engine->PublishStats();
  engine->loop_thread_ = std::thread([e = engine.get()] { e->Loop(); });
  return engine;
}

Engine::Engine(const EngineConfig& config, std::unique_ptr<ModelRunner> runner, int num_blocks,
               int block_tokens, int max_model_len)
    : config_(config),
      runner_(std::move(runner)),
      max_model_len_(max_model_len),
      max_total_tokens_(std::min<int64_t>(max_model_len,
                                          static_cast<int64_t>(num_blocks) * block_tokens)),
      block_manager_(num_blocks, block_tokens, config.enable_prefix_caching),
      scheduler_({config.max_num_seqs, config.max_num_batched_tokens}, &block_manager_),
      executor_([this] { executor_bound_ = runner_->BindCallingThread(); }) {}

Engine::~Engine() { Shutdown(ShutdownMode::kAbort); }

absl::StatusOr<SequencePrompt> Engine::BuildPrompt(const EngineRequest& request) const {
  const ModelConfig& model = runner_->config();
  std::vector<int32_t> image_rows;
  std::vector<Tensor> features;
  for (size_t i = 0; i < request.images.size(); ++i) {
    const Tensor& f = request.images[i].features;
    if (!f.defined() || f.device() != Device::kCpu || f.ndim() != 2 ||
        f.dim(1) != model.hidden_size || f.dim(0) < 2 ||
        (f.dtype() != DType::kF32 && f.dtype() != DType::kBF16)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "image %d: features must be host f32/bf16 [rows >= 2, %d], got %s", i,
          model.hidden_size, f.defined() ? f.DebugString() : "none"));
    }
    image_rows.push_back(static_cast<int32_t>(f.dim(0)));
    features.push_back(f.dtype() == DType::kF32 && f.is_contiguous() ? f : f.ToF32());
  }
  ASSIGN_OR_RETURN(SplicedPrompt spliced,
                   SpliceImages(request.prompt_token_ids, image_rows, model,
                                config_.max_images_per_request));
  SequencePrompt prompt;
  prompt.token_ids = std::move(spliced.token_ids);
  prompt.positions = std::move(spliced.positions);
  prompt.next_position = spliced.next_position;
  if (!features.empty()) {
    prompt.embedding_rows = std::move(spliced.embedding_rows);
    int64_t total_rows = 0;
    for (const Tensor& f : features) total_rows += f.dim(0);
    if (features.size() == 1) {
      prompt.image_features = features[0];
    } else {
      prompt.image_features = Tensor::Empty(DType::kF32, {total_rows, model.hidden_size});
      char* dst = static_cast<char*>(prompt.image_features.raw_data());
      for (const Tensor& f : features) {
        std::memcpy(dst, f.raw_data(), f.nbytes());
        dst += f.nbytes();
      }
    }
    int32_t first_row = 0;
    for (size_t i = 0; i < features.size(); ++i) {
      const std::string& id = request.images[i].content_hash;
      SequenceImage image;
      image.content_hash = HashImageContent(
          !id.empty() ? std::string_view(id)
                      : std::string_view(static_cast<const char*>(features[i].raw_data()),
                                         features[i].nbytes()));
      image.first_feature_row = first_row;
      image.num_rows = static_cast<int32_t>(features[i].dim(0));
      first_row += image.num_rows;
      prompt.images.push_back(image);
    }
  }
  return prompt;
}

absl::StatusOr<std::shared_ptr<RequestStream>> Engine::Submit(EngineRequest request) {
  if (request.request_id.empty()) return absl::InvalidArgumentError("empty request_id");
  if (request.prompt_token_ids.empty()) return absl::InvalidArgumentError("empty prompt");
  const int vocab = runner_->config().padded_vocab_size;
  RETURN_IF_ERROR(ValidateSamplingParams(request.sampling, vocab, config_.max_top_logprobs));
  ASSIGN_OR_RETURN(SequencePrompt prompt, BuildPrompt(request));
  const int prompt_rows = static_cast<int>(prompt.token_ids.size());
  if (prompt_rows + 1 > max_model_len_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt of %d rows (after image splice) leaves no room to generate within "
        "max_model_len %d",
        prompt_rows, max_model_len_));
  }
  if (prompt_rows + 1 > max_total_tokens_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt of %d rows (after image splice) does not fit the KV cache (%d blocks of %d)",
        prompt_rows, block_manager_.num_blocks(), block_manager_.block_size()));
  }
  const uint64_t seed =
      request.sampling.seed.has_value() ? *request.sampling.seed : absl::Uniform<uint64_t>(absl::BitGen());
  absl::flat_hash_set<int32_t> seen(request.prompt_token_ids.begin(),
                                    request.prompt_token_ids.end());

  auto stream = std::make_shared<RequestStream>(request.request_id);
  absl::MutexLock lock(&mu_);
  if (!accepting_) return absl::UnavailableError("engine is shutting down");
  if (live_ids_.contains(request.request_id)) {
    return absl::AlreadyExistsError("request " + request.request_id + " is already running");
  }
  if (config_.max_pending_requests > 0 &&
      static_cast<int>(live_ids_.size()) >= config_.max_pending_requests) {
    return absl::ResourceExhaustedError("engine queue is full");
  }
  auto active = std::make_unique<ActiveRequest>();
  active->seq = std::make_unique<Sequence>(request.request_id, next_arrival_index_++,
                                           std::move(prompt), std::move(request.sampling), seed,
                                           std::move(seen), max_total_tokens_);
  active->stream = stream;
  live_ids_.insert(request.request_id);
  incoming_.push_back(std::move(active));
  work_cv_.Signal();
  return stream;
}

bool Engine::Cancel(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  if (!live_ids_.contains(request_id)) return false;
  cancels_.push_back(request_id);
  work_cv_.Signal();
  return true;
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  return published_stats_;
}

void Engine::Shutdown(ShutdownMode mode) {
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    stop_ = true;
    if (mode == ShutdownMode::kAbort) abort_ = true;
    work_cv_.Signal();
  }
  absl::MutexLock join_lock(&join_mu_);
  if (loop_thread_.joinable()) loop_thread_.join();
}

void Engine::Loop() {
  while (true) {
    std::vector<std::unique_ptr<ActiveRequest>> arrivals;
    std::vector<std::string> cancels;
    bool stop, abort;
    {
      absl::MutexLock lock(&mu_);
      while (incoming_.empty() && cancels_.empty() && !stop_ && scheduler_.idle()) {
        work_cv_.Wait(&mu_);
      }
      arrivals.swap(incoming_);
      cancels.swap(cancels_);
      stop = stop_;
      abort = abort_;
    }
    for (std::unique_ptr<ActiveRequest>& request : arrivals) {
      Sequence* seq = request->seq.get();
      scheduler_.Add(seq);
      active_[seq->request_id] = std::move(request);
    }
    if (abort) {
      for (const auto& [id, request] : active_) cancels.push_back(id);
    }
    for (const std::string& id : cancels) {
      auto it = active_.find(id);
      if (it == active_.end()) continue;  // finished meanwhile
      if (InFlight(it->second->seq.get())) {
        deferred_cancels_.push_back(id);
        it->second->seq->ends_after_step = true;  // nothing more is planned for it
        continue;
      }
      TokenEvent event;
      event.finish_reason = FinishReason::kCancelled;
      Finish(id, std::move(event), absl::OkStatus());
    }
    SendOutbox();
    if (stop && scheduler_.idle() && in_flight_ == nullptr) {
      PublishStats();
      streamer_.Flush();  // every response is out before Shutdown returns
      return;
    }
    if (!scheduler_.idle() || in_flight_ != nullptr) RunStep();
    PublishStats();
  }
}

void Engine::StampFirstEvent(ActiveRequest* request, TokenEvent* event) {
  if (request->first_event_sent) return;
  request->first_event_sent = true;
  const Sequence& seq = *request->seq;
  event->prompt_tokens = seq.prompt_len();
  event->cached_prompt_tokens = seq.cached_prompt_tokens;
  if (seq.first_scheduled_time != absl::InfiniteFuture()) {
    event->queue_ms = Ms(seq.first_scheduled_time - seq.arrival_time);
    if (seq.first_token_time != absl::InfiniteFuture()) {
      event->prefill_ms = Ms(seq.first_token_time - seq.first_scheduled_time);
    }
  }
}

void Engine::Finish(const std::string& request_id, TokenEvent event, absl::Status error) {
  auto it = active_.find(request_id);
  std::unique_ptr<ActiveRequest> request = std::move(it->second);
  active_.erase(it);
  Sequence& seq = *request->seq;
  scheduler_.Remove(&seq);  // blocks are free before the caller hears about it
  const FinishReason reason = error.ok() ? event.finish_reason : FinishReason::kNone;
  int64_t EngineStats::*outcome_counter = &EngineStats::failed_requests;
  if (reason == FinishReason::kStop || reason == FinishReason::kLength) {
    outcome_counter = &EngineStats::completed_requests;
  } else if (reason == FinishReason::kCancelled) {
    outcome_counter = &EngineStats::cancelled_requests;
  }
  ++(loop_stats_.*outcome_counter);
  {
    // Visible to Stats() before the caller sees the final event.
    absl::MutexLock lock(&mu_);
    live_ids_.erase(request_id);
    ++(published_stats_.*outcome_counter);
  }
  if (metrics_ != nullptr) {
    metrics_->CountRequest(OutcomeName(reason));
    if (seq.first_token_time != absl::InfiniteFuture()) {
      metrics_->ObserveRequestLatencies(
          absl::ToDoubleSeconds(seq.first_token_time - seq.arrival_time),
          absl::ToDoubleSeconds(absl::Now() - seq.arrival_time));
    }
  }
  if (!error.ok()) {
    outbox_.push_back({request->stream, TokenEvent{}, std::move(error)});
    return;
  }
  StampFirstEvent(request.get(), &event);
  outbox_.push_back({request->stream, std::move(event), absl::OkStatus()});
}

void Engine::SendOutbox() {
  streamer_.Deliver(std::move(outbox_));
  outbox_.clear();
}

void Engine::PublishStats() {
  EngineStats stats = loop_stats_;
  stats.running = static_cast<int>(scheduler_.running().size());
  stats.waiting = static_cast<int>(scheduler_.waiting().size());
  stats.kv_blocks_total = block_manager_.num_blocks();
  stats.kv_blocks_used = block_manager_.num_blocks() - block_manager_.num_free_blocks();
  stats.kv_block_size = block_manager_.block_size();
  stats.prefix_cache_blocks = block_manager_.num_cached_idle_blocks();
  stats.max_model_len = max_model_len_;
  if (metrics_ != nullptr) metrics_->SetLoad(stats);
  absl::MutexLock lock(&mu_);
  stats.accepting = accepting_;
  published_stats_ = stats;
}

}  // namespace glm4v::worker
