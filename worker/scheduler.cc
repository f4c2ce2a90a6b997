#include "worker/scheduler.h"

#include <algorithm>
#include <cassert>

#include "absl/time/clock.h"

namespace glm4v::worker {

Scheduler::Scheduler(const SchedulerConfig& config, KvBlockManager* block_manager)
    : config_(config), block_manager_(block_manager) {}

void Scheduler::Add(Sequence* seq) {
  seq->state = Sequence::State::kWaiting;
  waiting_.push_back(seq);
}

int Scheduler::BlocksNeeded(const Sequence& seq, int end_row) const {
  const int block_size = block_manager_->block_size();
  const int blocks = (end_row + block_size - 1) / block_size;
  return std::max(0, blocks - static_cast<int>(seq.block_table.size()));
}

void Scheduler::AllocateBlocks(Sequence* seq, int end_row) {
  for (int n = BlocksNeeded(*seq, end_row); n > 0; --n) {
    std::optional<int> block = block_manager_->Allocate();
    assert(block.has_value());  // callers check num_free_blocks first
    seq->block_table.push_back(*block);
  }
}

void Scheduler::ReleaseBlocks(Sequence* seq) {
  // Tail blocks first, so the prefix cache evicts a sequence's tail before its prefix.
  for (auto it = seq->block_table.rbegin(); it != seq->block_table.rend(); ++it) {
    block_manager_->Release(*it);
  }
  seq->block_table.clear();
  seq->num_computed = 0;
  seq->num_registered_blocks = 0;
}

void Scheduler::Preempt(Sequence* seq) {
  ReleaseBlocks(seq);
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  seq->state = Sequence::State::kWaiting;
  ++seq->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(seq);
}

SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int budget = config_.max_num_batched_tokens;

  // Running sequences, oldest first; preempt from the young end when blocks run out.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    if (seq->ends_after_step) {  // its step in flight is its last: no rows, no blocks
      ++i;
      continue;
    }
    const int num_tokens = std::min(seq->num_uncomputed(), budget);
    const int end_row = seq->num_computed + num_tokens;
    bool preempted_self = false;
    while (block_manager_->num_free_blocks() < BlocksNeeded(*seq, end_row)) {
      Sequence* victim = running_.back();
      Preempt(victim);
      ++out.num_preempted;
      if (victim == seq) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;  // it was the youngest: nothing runs after it
    AllocateBlocks(seq, end_row);
    out.chunks.push_back(
        {seq, seq->num_computed, num_tokens, end_row == seq->num_tokens()});
    out.num_batched_tokens += num_tokens;
    budget -= num_tokens;
    ++i;
  }

  // Waiting sequences in order, unless this step had to preempt (memory is tight).
  if (out.num_preempted == 0) {
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int>(running_.size()) < config_.max_num_seqs) {
      const int used = TryAdmit(waiting_.front(), budget, &out);
      if (used == 0) break;
      waiting_.pop_front();
      budget -= used;
    }
  }
  return out;
}

int Scheduler::TryAdmit(Sequence* seq, int budget, SchedulerOutput* out) {
  assert(seq->num_computed == 0 && seq->block_table.empty() && seq->num_pending_tokens == 0);
  const int block_size = block_manager_->block_size();

  // Longest run of cached full blocks, keeping at least one row to compute (its logits
  // produce the next token).
  std::vector<int> hit_blocks;
  int idle_hits = 0;
  int queried_blocks = 0;
  if (block_manager_->prefix_caching_enabled()) {
    queried_blocks = (seq->num_tokens() - 1) / block_size;
    const std::vector<BlockHash>& hashes = seq->BlockHashes(queried_blocks, block_size);
    for (int b = 0; b < queried_blocks; ++b) {
      std::optional<int> block = block_manager_->FindCached(hashes[b]);
      if (!block.has_value()) break;
      hit_blocks.push_back(*block);
      if (block_manager_->ref_count(*block) == 0) ++idle_hits;
    }
  }
  const int cached_rows = static_cast<int>(hit_blocks.size()) * block_size;
  const int num_tokens = std::min(seq->num_tokens() - cached_rows, budget);
  const int end_row = cached_rows + num_tokens;
  const int new_blocks =
      (end_row + block_size - 1) / block_size - static_cast<int>(hit_blocks.size());
  if (block_manager_->num_free_blocks() < new_blocks + idle_hits) return 0;

  block_manager_->CountPrefixQueries(queried_blocks);
  const std::vector<BlockHash>& hashes = seq->BlockHashes(
      static_cast<int>(hit_blocks.size()), block_size);
  for (size_t b = 0; b < hit_blocks.size(); ++b) {
    std::optional<int> block = block_manager_->AcquireCached(hashes[b]);
    assert(block.has_value() && *block == hit_blocks[b]);
    seq->block_table.push_back(*block);
  }
  seq->num_computed = cached_rows;
  seq->num_registered_blocks = static_cast<int>(hit_blocks.size());
  AllocateBlocks(seq, end_row);

  if (!seq->admitted_once) {
    seq->admitted_once = true;
    seq->cached_prompt_tokens = std::min(cached_rows, seq->prompt_len());
    seq->first_scheduled_time = absl::Now();
  }
  seq->state = Sequence::State::kRunning;
  auto pos = std::upper_bound(
      running_.begin(), running_.end(), seq,
      [](const Sequence* a, const Sequence* b) { return a->arrival_index < b->arrival_index; });
  running_.insert(pos, seq);
  out->chunks.push_back({seq, cached_rows, num_tokens, end_row == seq->num_tokens()});
  out->num_batched_tokens += num_tokens;
  return num_tokens;
}

void Scheduler::CommitChunk(const ScheduledChunk& chunk) {
  AdvanceChunk(chunk);
  RegisterComputedBlocks(chunk.seq);
}

void Scheduler::AdvanceChunk(const ScheduledChunk& chunk) {
  Sequence* seq = chunk.seq;
  assert(seq->num_computed == chunk.start);
  seq->num_computed += chunk.num_tokens;
}

void Scheduler::RegisterComputedBlocks(Sequence* seq) {
  if (!block_manager_->prefix_caching_enabled()) return;
  const int block_size = block_manager_->block_size();
  // A sequence preempted since its step was launched has no blocks (num_computed is 0).
  const int full_blocks = seq->num_computed / block_size;
  if (full_blocks <= seq->num_registered_blocks) return;
  const std::vector<BlockHash>& hashes = seq->BlockHashes(full_blocks, block_size);
  for (int b = seq->num_registered_blocks; b < full_blocks; ++b) {
    block_manager_->RegisterFull(seq->block_table[b], hashes[b]);
  }
  seq->num_registered_blocks = full_blocks;
}

void Scheduler::Remove(Sequence* seq) {
  ReleaseBlocks(seq);
  if (seq->state == Sequence::State::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), seq));
  } else if (seq->state == Sequence::State::kWaiting) {
    auto it = std::find(waiting_.begin(), waiting_.end(), seq);
    if (it != waiting_.end()) waiting_.erase(it);
  }
  seq->state = Sequence::State::kFinished;
}

}  // namespace glm4v::worker
