// The engine's step pipeline: plan step N+1 while step N runs on the executor thread, then
// complete N, launch N+1 and stream N's tokens (see Engine::RunStep). Split from engine.cc,
// which holds admission, cancellation and the loop.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "kernels/cpu/parallel.h"
#include "worker/engine.h"
#include "worker/step_sampling.h"

namespace glm4v::worker {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

SequenceChunk Engine::BuildChunk(const ScheduledChunk& chunk) const {
  const Sequence& seq = *chunk.seq;
  SequenceChunk out;
  out.token_ids.resize(chunk.num_tokens);
  out.positions.resize(chunk.num_tokens);
  bool has_image_rows = false;
  for (int i = 0; i < chunk.num_tokens; ++i) {
    out.token_ids[i] = seq.TokenId(chunk.start + i);
    out.positions[i] = seq.Position(chunk.start + i);
    has_image_rows |= seq.EmbeddingRow(chunk.start + i) >= 0;
  }
  if (has_image_rows) {
    out.embedding_rows.resize(chunk.num_tokens);
    for (int i = 0; i < chunk.num_tokens; ++i) {
      out.embedding_rows[i] = seq.EmbeddingRow(chunk.start + i);
    }
    out.embeddings = seq.prompt.image_features;  // shares storage
  }
  out.num_cached = chunk.start;
  out.block_table = seq.block_table;
  out.logits = chunk.sample ? SequenceChunk::Logits::kLast : SequenceChunk::Logits::kNone;
  return out;
}

bool Engine::InFlight(const Sequence* seq) const {
  if (in_flight_ == nullptr) return false;
  for (const ScheduledChunk& chunk : in_flight_->plan.chunks) {
    if (chunk.seq == seq) return true;
  }
  return false;
}

void Engine::ExecuteLaunched(LaunchedStep* step) {
  const SchedulerOutput& out = step->plan;
  const int n = static_cast<int>(out.chunks.size());
  const int vocab = runner_->config().padded_vocab_size;
  step->statuses.assign(n, executor_bound_);
  step->logits_rows.assign(n, nullptr);
  step->tokens.assign(n, SampledToken{});
  if (!executor_bound_.ok()) return;
  const bool on_device = runner_->samples_on_device();

  // `indices` are chunks of the step; `rows` their sampling rows (device sampling).
  auto run = [&](const DecoderBatch& batch, const std::vector<int>& indices,
                 const SamplingBatchHost& sampling,
                 const std::vector<int>& sampled) -> absl::Status {
    if (on_device) {
      // Sampled where the logits are: only ids (and asked logprobs) come back.
      ASSIGN_OR_RETURN(SampledRows rows, runner_->ExecuteAndSample(batch, sampling));
      const size_t n_rows = static_cast<size_t>(sampling.num_rows());
      const size_t tops = n_rows * static_cast<size_t>(std::max(rows.top_count, 0));
      if (rows.token_ids.size() != n_rows ||
          (sampling.any_logprobs() &&
           (rows.logprobs.size() != n_rows || rows.top_count < sampling.max_top_logprobs() ||
            rows.top_ids.size() != tops || rows.top_logprobs.size() != tops))) {
        return absl::InternalError("model step returned ids that do not match the batch");
      }
      for (int r = 0; r < sampling.num_rows(); ++r) {
        if (rows.token_ids[r] < 0 || rows.token_ids[r] >= vocab) {
          return absl::InternalError("model step sampled an id outside the vocabulary");
        }
        step->tokens[sampled[r]] = TokenFromSampledRow(rows, r, sampling.rows[r]);
      }
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(DecoderOutput output, runner_->Execute(batch));
    const int batch_size = static_cast<int>(indices.size());
    if (static_cast<int>(output.row_offsets.size()) != batch_size + 1 ||
        (output.row_offsets.back() > 0 &&
         (!output.logits.defined() || output.logits.dtype() != DType::kF32 ||
          output.logits.ndim() != 2 || output.logits.dim(1) != vocab ||
          output.logits.dim(0) != output.row_offsets.back()))) {
      return absl::InternalError("model step returned logits that do not match the batch");
    }
    for (int b = 0; b < batch_size; ++b) {
      const int i = indices[b];
      if (!out.chunks[i].sample) continue;
      if (output.row_offsets[b + 1] - output.row_offsets[b] != 1) {
        return absl::InternalError("model step returned no logits row for a sampled sequence");
      }
      step->logits_rows[i] =
          output.logits.data<float>() + static_cast<int64_t>(output.row_offsets[b]) * vocab;
    }
    step->outputs.push_back(std::move(output));
    return absl::OkStatus();
  };

  std::vector<int> all(n);
  for (int i = 0; i < n; ++i) all[i] = i;
  absl::Status status = run(step->batch, all, step->sampling, step->sampled_chunks);
  if (status.ok() || n == 1) {
    if (!status.ok()) step->statuses[0] = status;
    step->executed = absl::Now();
    return;
  }
  for (int i = 0; i < n; ++i) {
    step->logits_rows[i] = nullptr;
    DecoderBatch alone;
    alone.sequences.push_back(step->batch.sequences[i]);
    SamplingBatchHost sampling;
    std::vector<int> sampled;
    for (int r = 0; r < step->sampling.num_rows(); ++r) {
      if (step->sampled_chunks[r] != i) continue;
      sampling.AddRow(step->sampling.rows[r], step->sampling.penalty(r),
                      step->sampling.suppressed(r), step->sampling.adjusted_ids(r),
                      step->sampling.adjustments(r));
      sampled.push_back(i);
    }
    step->statuses[i] = run(alone, {i}, sampling, sampled);
  }
  step->executed = absl::Now();
}

std::unique_ptr<Engine::LaunchedStep> Engine::ScheduleStep() {
  auto step = std::make_unique<LaunchedStep>();
  step->plan = scheduler_.Schedule();
  step->scheduled = absl::Now();
  loop_stats_.preemptions += step->plan.num_preempted;
  if (metrics_ != nullptr && step->plan.num_preempted > 0) {
    metrics_->AddPreemptions(step->plan.num_preempted);
  }
  if (step->plan.empty()) return nullptr;
  // Prompt accounting at a request's first admission.
  for (const ScheduledChunk& chunk : step->plan.chunks) {
    ActiveRequest* request = active_[chunk.seq->request_id].get();
    if (request->prompt_counted) continue;
    request->prompt_counted = true;
    loop_stats_.prompt_tokens += chunk.seq->prompt_len();
    loop_stats_.cached_prompt_tokens += chunk.seq->cached_prompt_tokens;
    if (metrics_ != nullptr) {
      metrics_->AddPromptTokens(chunk.seq->prompt_len(), chunk.seq->cached_prompt_tokens);
    }
  }
  step->batch.sequences.reserve(step->plan.chunks.size());
  step->pending_rows.reserve(step->plan.chunks.size());
  for (const ScheduledChunk& chunk : step->plan.chunks) {
    step->batch.sequences.push_back(BuildChunk(chunk));
    const std::vector<int32_t>& ids = step->batch.sequences.back().token_ids;
    // Only a chunk's last row can be the token the step in flight samples.
    step->pending_rows.push_back(
        !ids.empty() && ids.back() == Sequence::kPendingTokenId ? chunk.num_tokens - 1 : -1);
  }
  return step;
}

void Engine::DropChunks(const absl::flat_hash_set<std::string>& ended, LaunchedStep* step) {
  size_t kept = 0;
  step->plan.num_batched_tokens = 0;
  for (size_t i = 0; i < step->plan.chunks.size(); ++i) {
    if (ended.contains(step->plan.chunks[i].seq->request_id)) continue;
    step->plan.num_batched_tokens += step->plan.chunks[i].num_tokens;
    if (kept != i) {  // (a self-move would empty the chunk's vectors)
      step->plan.chunks[kept] = step->plan.chunks[i];
      step->batch.sequences[kept] = std::move(step->batch.sequences[i]);
      step->pending_rows[kept] = step->pending_rows[i];
    }
    ++kept;
  }
  step->plan.chunks.resize(kept);
  step->batch.sequences.resize(kept);
  step->pending_rows.resize(kept);
}

void Engine::Launch(std::unique_ptr<LaunchedStep> step) {
  const bool on_device = runner_->samples_on_device();
  for (size_t i = 0; i < step->plan.chunks.size(); ++i) {
    const ScheduledChunk& chunk = step->plan.chunks[i];
    if (const int row = step->pending_rows[i]; row >= 0) {
      step->batch.sequences[i].token_ids[row] = chunk.seq->TokenId(chunk.start + row);
    }
    if (on_device && chunk.sample) {
      AddSamplingRow(*chunk.seq, &step->sampling);
      step->sampled_chunks.push_back(static_cast<int>(i));
    }
  }
  // From here the next Schedule sees these rows as cached and the sampled rows' tokens as
  // pending; CompleteInFlight settles both.
  for (const ScheduledChunk& chunk : step->plan.chunks) {
    scheduler_.AdvanceChunk(chunk);
    if (!chunk.sample) continue;
    Sequence* seq = chunk.seq;
    seq->StartPendingToken();
    // The token this step samples ends the sequence by length whatever it is.
    seq->ends_after_step =
        (seq->params.max_tokens > 0 &&
         static_cast<int>(seq->output_ids.size()) + 1 >= seq->params.max_tokens) ||
        seq->num_tokens() >= seq->max_total_tokens;
  }
  step->launched = absl::Now();
  in_flight_ = std::move(step);
  executor_.Launch([this, launched = in_flight_.get()] { ExecuteLaunched(launched); });
}

std::vector<Engine::StepOutcome> Engine::CompleteInFlight() {
  executor_.Wait();
  std::unique_ptr<LaunchedStep> step = std::move(in_flight_);
  const absl::Time waited = absl::Now();
  const SchedulerOutput& out = step->plan;

  // Health is decided and published before any request hears of a failure, so a caller that
  // sees its request fail also sees the engine unhealthy.
  const int num_failed = static_cast<int>(std::count_if(
      step->statuses.begin(), step->statuses.end(), [](const absl::Status& s) { return !s.ok(); }));
  loop_stats_.healthy = num_failed < static_cast<int>(out.chunks.size());
  if (!loop_stats_.healthy) PublishStats();

  // Host sampling (the runner returned logits): every row of the batch in parallel, each a
  // pure function of its row, params, seed and step; then the tokens apply in batch order.
  if (!runner_->samples_on_device()) {
    const int vocab = runner_->config().padded_vocab_size;
    std::vector<int> to_sample;
    for (size_t i = 0; i < out.chunks.size(); ++i) {
      if (step->statuses[i].ok() && out.chunks[i].sample) to_sample.push_back(static_cast<int>(i));
    }
    cpu::ParallelFor(static_cast<int64_t>(to_sample.size()), int64_t{16} * vocab, [&](int64_t j) {
      thread_local Sampler sampler;
      const int i = to_sample[j];
      step->tokens[i] = SampleOnHost(&sampler, absl::MakeSpan(step->logits_rows[i], vocab),
                                     *out.chunks[i].seq);
    });
  }
  const absl::Time sampled = absl::Now();

  std::vector<StepOutcome> outcomes;
  outcomes.reserve(out.chunks.size() + deferred_cancels_.size());
  int generated = 0;
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& chunk = out.chunks[i];
    Sequence* seq = chunk.seq;
    if (!step->statuses[i].ok()) {
      if (chunk.sample) seq->DropPendingToken();
      outcomes.push_back({seq->request_id, TokenEvent{}, step->statuses[i], true});
      continue;
    }
    scheduler_.RegisterComputedBlocks(seq);
    if (!chunk.sample) continue;

    SampledToken& token = step->tokens[i];
    seq->ResolvePendingToken(token.token_id);
    ++generated;
    if (seq->first_token_time == absl::InfiniteFuture()) seq->first_token_time = step->executed;

    StepOutcome outcome{seq->request_id};
    TokenEvent& event = outcome.event;
    event.token_ids.push_back(token.token_id);
    if (token.has_logprob) {
      TokenLogprobs logprobs;
      logprobs.chosen = {token.token_id, token.logprob};
      logprobs.top = std::move(token.top_logprobs);
      event.logprobs.push_back(std::move(logprobs));
    }
    const std::vector<int32_t>& stops = seq->params.stop_token_ids;
    if (std::find(stops.begin(), stops.end(), token.token_id) != stops.end()) {
      event.finish_reason = FinishReason::kStop;
    } else if ((seq->params.max_tokens > 0 &&
                static_cast<int>(seq->output_ids.size()) >= seq->params.max_tokens) ||
               seq->num_tokens() >= seq->max_total_tokens) {
      event.finish_reason = FinishReason::kLength;
    }
    outcome.finished = event.finish_reason != FinishReason::kNone;
    outcomes.push_back(std::move(outcome));
  }
  // Cancels that waited for this step; a request that ended in it keeps its own ending.
  for (const std::string& id : deferred_cancels_) {
    const bool ended = std::any_of(outcomes.begin(), outcomes.end(), [&](const StepOutcome& o) {
      return o.finished && o.request_id == id;
    });
    if (ended || !active_.contains(id)) continue;
    StepOutcome cancel{id};
    cancel.event.finish_reason = FinishReason::kCancelled;
    cancel.finished = true;
    outcomes.push_back(std::move(cancel));
  }
  deferred_cancels_.clear();

  loop_stats_.model_ms_total += Ms(waited - step->launched);
  loop_stats_.sample_ms_total += Ms(sampled - waited);
  // From the later of its scheduling and the previous step's completion: with overlap a step
  // is scheduled while the one before it still runs.
  const absl::Time completed = absl::Now();
  const double seconds =
      absl::ToDoubleSeconds(completed - std::max(step->scheduled, last_completed_));
  last_completed_ = completed;
  loop_stats_.steps += 1;
  loop_stats_.last_batch_sequences = static_cast<int>(out.chunks.size());
  loop_stats_.last_batch_tokens = out.num_batched_tokens;
  loop_stats_.step_time_ms_total += seconds * 1e3;
  loop_stats_.generated_tokens += generated;
  if (metrics_ != nullptr) {
    metrics_->ObserveStep(static_cast<int>(out.chunks.size()), out.num_batched_tokens, seconds);
    metrics_->AddGeneratedTokens(generated);
  }
  return outcomes;
}

void Engine::Deliver(std::vector<StepOutcome> outcomes) {
  for (StepOutcome& outcome : outcomes) {
    if (outcome.finished) {
      Finish(outcome.request_id, std::move(outcome.event), std::move(outcome.error));
      continue;
    }
    ActiveRequest* request = active_[outcome.request_id].get();
    StampFirstEvent(request, &outcome.event);
    outbox_.push_back({request->stream, std::move(outcome.event), absl::OkStatus()});
  }
  // The streaming thread delivers these while this thread goes on.
  SendOutbox();
}

void Engine::RunStep() {
  const absl::Time start = absl::Now();
  const BlockManagerStats before = block_manager_.stats();
  // Step N+1 is planned while step N (if any) still runs.
  std::unique_ptr<LaunchedStep> next = scheduler_.idle() ? nullptr : ScheduleStep();
  const absl::Time scheduled = absl::Now();
  loop_stats_.schedule_ms_total += Ms(scheduled - start);

  std::vector<StepOutcome> outcomes;
  if (in_flight_ != nullptr) outcomes = CompleteInFlight();
  if (next != nullptr) {
    // Requests that ended in step N leave step N+1 before it starts (their blocks are freed
    // in Deliver); the others' pending rows now have their tokens.
    absl::flat_hash_set<std::string> ended;
    for (const StepOutcome& outcome : outcomes) {
      if (outcome.finished) ended.insert(outcome.request_id);
    }
    if (!ended.empty()) DropChunks(ended, next.get());
    if (!next->plan.empty()) Launch(std::move(next));
  }
  // Without overlap the step just launched completes now (nothing was in flight before it).
  if (!config_.overlap_steps && in_flight_ != nullptr) outcomes = CompleteInFlight();
  const absl::Time delivering = absl::Now();
  Deliver(std::move(outcomes));
  loop_stats_.stream_ms_total += Ms(absl::Now() - delivering);

  const BlockManagerStats after = block_manager_.stats();
  loop_stats_.prefix_cache_queries += after.prefix_queries - before.prefix_queries;
  loop_stats_.prefix_cache_hits += after.prefix_hits - before.prefix_hits;
  if (metrics_ != nullptr) {
    metrics_->AddPrefixCacheLookups(after.prefix_queries - before.prefix_queries,
                                    after.prefix_hits - before.prefix_hits);
  }
}

}  // namespace glm4v::worker
