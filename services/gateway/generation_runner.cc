#include "services/gateway/generation_runner.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "services/common/grpc_status.h"
#include "services/common/request_id.h"
#include "services/gateway/request_validator.h"
#include "services/gateway/tokenizer/incremental_detokenizer.h"
#include "services/gateway/tokenizer/stop_matcher.h"
#include "services/gateway/worker_stream.h"

namespace glm4v {
namespace {

// Prompt ids hashed for worker affinity: about one KV block.
constexpr size_t kAffinityIds = 16;

grpc::Status Error(absl::StatusCode code, const std::string& message) {
  return grpc::Status(static_cast<grpc::StatusCode>(code), message);
}

// Counts the request in glm4v_gateway_queue_depth until its first token (or its end).
class QueueDepthGuard {
 public:
  explicit QueueDepthGuard(metrics::Gauge* gauge) : gauge_(gauge) { gauge_->Increment(); }
  ~QueueDepthGuard() { Release(); }
  void Release() {
    if (gauge_ != nullptr) gauge_->Decrement();
    gauge_ = nullptr;
  }

 private:
  metrics::Gauge* gauge_;
};

internal::WorkerSampling ToWorkerSampling(const v1::SamplingParams& s,
                                          const GatewayOptions& options,
                                          const ModelConfig& config) {
  internal::WorkerSampling out;
  out.set_max_tokens(s.has_max_tokens() ? s.max_tokens() : options.default_max_tokens);
  out.set_temperature(s.has_temperature() ? s.temperature() : 1.0f);
  out.set_top_p(s.has_top_p() ? s.top_p() : 1.0f);
  out.set_top_k(s.has_top_k() ? s.top_k() : 0);
  out.set_repetition_penalty(s.has_repetition_penalty() ? s.repetition_penalty() : 1.0f);
  out.set_presence_penalty(s.presence_penalty());
  out.set_frequency_penalty(s.frequency_penalty());
  *out.mutable_logit_bias() = s.logit_bias();
  if (s.has_seed()) {
    out.set_seed(s.seed());
    out.set_has_seed(true);
  }
  if (!s.ignore_eos()) {
    for (int id : config.eos_token_ids) out.add_stop_token_ids(id);
  }
  for (uint32_t id : s.stop_token_ids()) out.add_stop_token_ids(id);
  out.set_top_logprobs(s.top_logprobs());
  out.set_logprobs(s.logprobs() || s.top_logprobs() > 0);
  return out;
}

v1::FinishReason ToPublic(internal::WorkerFinishReason reason) {
  switch (reason) {
    case internal::WORKER_FINISH_REASON_STOP:
      return v1::FINISH_REASON_STOP;
    case internal::WORKER_FINISH_REASON_LENGTH:
      return v1::FINISH_REASON_LENGTH;
    case internal::WORKER_FINISH_REASON_CANCELLED:
      return v1::FINISH_REASON_CANCELLED;
    default:
      return v1::FINISH_REASON_UNSPECIFIED;
  }
}

uint64_t AffinityKey(const BuiltPrompt& prompt, const internal::EncodeResponse& vision) {
  const size_t n = std::min(prompt.ids.size(), kAffinityIds);
  std::string first_image = vision.features_size() > 0 ? vision.features(0).content_hash() : "";
  return absl::HashOf(std::vector<uint32_t>(prompt.ids.begin(), prompt.ids.begin() + n),
                      first_image);
}

}  // namespace

v1::ModelInfo GenerationRunner::ModelInfo() const {
  const GatewayOptions& options = *deps_.options;
  const ModelConfig& config = *deps_.model_config;
  v1::ModelInfo info;
  info.set_model(options.model_name);
  int context = config.seq_length;
  const int workers = deps_.workers->MaxModelLen();
  if (workers > 0 && (context <= 0 || workers < context)) context = workers;
  info.set_context_length(static_cast<uint32_t>(std::max(context, 0)));
  info.set_max_prompt_tokens(static_cast<uint32_t>(
      std::max(0, context > 0 ? std::min(options.max_prompt_tokens, context - 1)
                              : options.max_prompt_tokens)));
  info.set_accepts_images(options.accepts_images);
  info.set_image_tokens(options.accepts_images ? config.vision.feature_rows() : 0);
  info.set_max_images_per_request(
      options.accepts_images ? static_cast<uint32_t>(options.max_images_per_request) : 0);
  info.set_seq_length(static_cast<uint32_t>(std::max(config.seq_length, 0)));
  info.set_max_tokens_limit(options.max_max_tokens);
  return info;
}

absl::Time RequestDeadline(const grpc::ServerContext& context, absl::Duration request_timeout) {
  return std::min(absl::FromChrono(context.deadline()), absl::Now() + request_timeout);
}

grpc::Status GenerationRunner::Run(grpc::ServerContext* context, const v1::GenerateRequest& request,
                                   const std::string& request_id, const Sink& sink) const {
  const GatewayOptions& options = *deps_.options;
  const GatewayMetrics& metrics = *deps_.metrics;
  const absl::Time arrival = absl::Now();
  const absl::Time deadline = RequestDeadline(*context, options.request_timeout);

  if (absl::Status valid = ValidateGenerateRequest(request, options); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  QueueDepthGuard queue_depth(metrics.queue_depth);
  absl::StatusOr<AdmissionController::Slot> slot =
      deps_.admission->Admit(deadline, [context]() { return context->IsCancelled(); });
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  const absl::Duration admission_wait = absl::Now() - arrival;

  absl::StatusOr<BuiltPrompt> prompt = deps_.prompts->Build(request, deps_.workers->MaxModelLen());
  if (!prompt.ok()) return ToGrpcStatus(prompt.status());

  // --- Images -> features ---
  internal::EncodeResponse vision;
  double vision_ms = 0;
  if (!prompt->images.empty()) {
    if (deps_.vision == nullptr) {  // the validator refuses images for text-only models
      return Error(absl::StatusCode::kInvalidArgument, "this model takes no images");
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<internal::EncodeResponse> encoded = deps_.vision->Encode(
        prompt->images, request_id, std::min(deadline, start + options.vision_timeout));
    if (!encoded.ok()) return ToGrpcStatus(encoded.status());
    vision = std::move(*encoded);
    bool all_cached = true;
    for (bool hit : vision.cache_hit()) all_cached &= hit;
    if (!all_cached) vision_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  }
  if (context->IsCancelled()) return Error(absl::StatusCode::kCancelled, "request cancelled");

  // --- Worker request ---
  internal::SubmitRequest submit;
  // Unique per attempt: callers may reuse their own ids, the engine may not.
  submit.set_request_id(absl::StrCat(request_id, "#", NewRequestId().substr(0, 8)));
  submit.mutable_prompt_token_ids()->Assign(prompt->ids.begin(), prompt->ids.end());
  for (size_t i = 0; i < prompt->images.size(); ++i) {
    internal::PromptImage* image = submit.add_images();
    image->set_boi_index(prompt->boi_positions[i]);
    image->mutable_features()->Swap(vision.mutable_features(static_cast<int>(i)));
  }
  *submit.mutable_sampling() = ToWorkerSampling(request.sampling(), options, *deps_.model_config);
  const uint64_t affinity = AffinityKey(*prompt, vision);
  // The prompt's KV blocks as the workers' prefix caches name them (cache-aware routing).
  std::vector<std::string> image_hashes;
  for (const internal::PromptImage& image : submit.images()) {
    image_hashes.push_back(image.features().content_hash());
  }
  absl::StatusOr<PromptBlocks> blocks =
      PromptBlocks::Create(prompt->ids, image_hashes, *deps_.model_config);
  if (!blocks.ok()) {
    LOG_WARN("prompt blocks not computed; routing by load")
        .With("request_id", request_id)
        .With("error", blocks.status());
  }

  // --- Output processing state ---
  tokenizer::IncrementalDetokenizer detokenizer(deps_.tokenizer);
  std::optional<tokenizer::StopMatcher> stops;
  if (request.sampling().stop_size() > 0) {
    absl::StatusOr<tokenizer::StopMatcher> matcher = tokenizer::StopMatcher::Create(
        {request.sampling().stop().begin(), request.sampling().stop().end()});
    if (!matcher.ok()) return ToGrpcStatus(matcher.status());
    stops.emplace(std::move(*matcher));
  }
  auto to_text = [&](absl::Span<const uint32_t> ids) {
    std::string text;
    for (uint32_t id : ids) {
      // Special and out-of-vocabulary ids (a random model may produce them) print nothing.
      if (id >= deps_.tokenizer->vocab_size() ||
          deps_.tokenizer->IsSpecial(static_cast<tokenizer::TokenId>(id))) {
        continue;
      }
      absl::StatusOr<std::string> piece = detokenizer.Push(static_cast<tokenizer::TokenId>(id));
      if (piece.ok()) text += *piece;
    }
    return text;
  };

  std::shared_ptr<WorkerPool::Worker> excluded;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::shared_ptr<WorkerPool::Worker>> picked = deps_.workers->Pick(
        blocks.ok() ? &*blocks : nullptr, affinity, excluded.get());
    if (!picked.ok()) return ToGrpcStatus(picked.status());
    std::shared_ptr<WorkerPool::Worker> worker = *std::move(picked);
    worker->open_streams++;
    struct OpenStreamGuard {
      WorkerPool::Worker* w;
      ~OpenStreamGuard() { w->open_streams--; }
    } open_guard{worker.get()};
    WorkerStream stream(worker->stub.get(), submit, deadline,
                        [context]() { return context->IsCancelled(); });

    bool got_event = false;
    uint32_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
    double worker_queue_ms = 0;
    absl::Time first_token_time = absl::InfiniteFuture(), last_token_time = arrival;
    while (true) {
      internal::TokenEvent event;
      grpc::Status status;
      WorkerStream::Result result = stream.Next(&event, &status);
      if (result == WorkerStream::Result::kEnd) {
        if (status.ok()) {
          return Error(absl::StatusCode::kInternal,
                       absl::StrCat("worker ", worker->address, " ended the stream unfinished"));
        }
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
          deps_.workers->MarkDown(worker.get());
          // Nothing was generated yet: another replica can take the request as if new.
          if (!got_event && attempt == 0) {
            LOG_WARN("worker unavailable, retrying on another")
                .With("request_id", request_id)
                .With("worker", worker->address)
                .With("error", status.error_message());
            excluded = worker;
            break;
          }
        }
        if (status.error_code() == grpc::StatusCode::CANCELLED && context->IsCancelled()) {
          return Error(absl::StatusCode::kCancelled, "request cancelled by the caller");
        }
        return grpc::Status(status.error_code(),
                            absl::StrCat("worker ", worker->address, ": ", status.error_message()));
      }

      // --- A token event ---
      const absl::Time now = absl::Now();
      v1::GenerateStreamResponse chunk;
      chunk.set_request_id(request_id);
      if (!got_event) {
        got_event = true;
        queue_depth.Release();
        prompt_tokens = event.prompt_tokens();
        cached_tokens = event.cached_prompt_tokens();
        worker_queue_ms = event.queue_ms();
        metrics.queue_time->Observe(absl::ToDoubleSeconds(admission_wait) +
                                    worker_queue_ms / 1000.0);
      }
      if (event.token_ids_size() > 0) {
        if (first_token_time == absl::InfiniteFuture()) {
          first_token_time = now;
          metrics.time_to_first_token->Observe(absl::ToDoubleSeconds(now - arrival));
        }
        last_token_time = now;
      }
      completion_tokens += event.token_ids_size();
      chunk.mutable_token_ids()->CopyFrom(event.token_ids());
      for (const internal::TokenLogprobSet& set : event.logprobs()) {
        v1::TokenLogprobs* out = chunk.add_logprobs();
        auto fill = [this](const internal::Logprob& in, v1::TokenLogprob* lp) {
          lp->set_token_id(in.token_id());
          lp->set_logprob(in.logprob());
          const auto id = static_cast<tokenizer::TokenId>(in.token_id());
          absl::StatusOr<std::string> text = deps_.tokenizer->Decode(absl::MakeConstSpan(&id, 1));
          if (text.ok()) lp->set_text(*text);
        };
        fill(set.chosen(), out->mutable_chosen());
        for (const internal::Logprob& top : set.top()) fill(top, out->add_top());
      }
      std::string text = to_text(event.token_ids());
      v1::FinishReason finish = ToPublic(event.finish_reason());
      if (finish != v1::FINISH_REASON_UNSPECIFIED) text += detokenizer.Flush();
      if (stops.has_value()) {
        tokenizer::StopMatcher::Result matched = stops->Push(text);
        text = std::move(matched.text);
        if (matched.matched >= 0) {
          chunk.set_matched_stop(stops->stops()[matched.matched]);
          finish = v1::FINISH_REASON_STOP;
          stream.Cancel();  // the worker stops generating and frees the KV blocks
        } else if (finish != v1::FINISH_REASON_UNSPECIFIED) {
          text += stops->Flush();
        }
      }
      chunk.set_text_delta(std::move(text));

      if (finish != v1::FINISH_REASON_UNSPECIFIED) {
        chunk.set_finish_reason(finish);
        v1::Usage* usage = chunk.mutable_usage();
        usage->set_prompt_tokens(prompt_tokens);
        usage->set_completion_tokens(completion_tokens);
        usage->set_image_tokens(static_cast<uint32_t>(prompt->images.size()) *
                                deps_.model_config->vision.feature_rows());
        usage->set_cached_prompt_tokens(cached_tokens);
        v1::Timings* timings = chunk.mutable_timings();
        timings->set_queue_ms(absl::ToDoubleMilliseconds(admission_wait) + worker_queue_ms);
        timings->set_vision_ms(vision_ms);
        if (first_token_time != absl::InfiniteFuture()) {
          timings->set_time_to_first_token_ms(
              absl::ToDoubleMilliseconds(first_token_time - arrival));
          timings->set_decode_ms(absl::ToDoubleMilliseconds(last_token_time - first_token_time));
        }
        timings->set_total_ms(absl::ToDoubleMilliseconds(absl::Now() - arrival));
        metrics.prompt_tokens->Increment(prompt_tokens);
        metrics.completion_tokens->Increment(completion_tokens);
        if (completion_tokens > 1) {
          metrics.time_per_output_token->Observe(
              absl::ToDoubleSeconds(last_token_time - first_token_time) / (completion_tokens - 1));
        }
        if (!sink(chunk)) return Error(absl::StatusCode::kCancelled, "caller went away");
        return grpc::Status::OK;
      }
      if (!sink(chunk)) {
        stream.Cancel();
        return Error(absl::StatusCode::kCancelled, "caller went away");
      }
    }
  }
}

}  // namespace glm4v
