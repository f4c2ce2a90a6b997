// Continuous batching. Each step mixes the running sequences' next rows (one decode token, or a
// chunk of a prefill / recompute) with newly admitted waiting sequences, under a token budget
// (max_num_batched_tokens) and a running-sequence cap (max_num_seqs).
//
// Running sequences are served oldest first. When the KV cache cannot hold a running
// sequence's next rows, the youngest running sequence is preempted: its blocks are released and
// it goes back to the front of the waiting queue with its generated tokens, to be recomputed
// (prefix-cached blocks make that cheap). Waiting sequences are admitted in order (FCFS) when
// their first chunk fits; a step that had to preempt admits nothing. The oldest sequence can
// always take every block, so as long as each sequence alone fits in the cache (the engine's
// admission rule) the schedule never deadlocks.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "worker/block_manager.h"
#include "worker/sequence.h"

namespace glm4v::worker {

struct SchedulerConfig {
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int start = 0;       // first row of the chunk (= rows already cached)
  int num_tokens = 0;  // rows computed this step
  bool sample = false;  // the chunk ends at the last known row: sample the next token
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // running (oldest first), then newly admitted
  int num_batched_tokens = 0;
  int num_preempted = 0;
  bool empty() const { return chunks.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvBlockManager* block_manager);

  // A new sequence joins the back of the waiting queue.
  void Add(Sequence* seq);
  // Decides this step's chunks and reserves their KV blocks.
  SchedulerOutput Schedule();
  // After the model computed `chunk`: AdvanceChunk then RegisterComputedBlocks.
  void CommitChunk(const ScheduledChunk& chunk);
  // When the step holding `chunk` is launched: its rows count as cached, so the next Schedule
  // (made while that step runs: step overlap) plans the rows after them.
  void AdvanceChunk(const ScheduledChunk& chunk);
  // Once that step succeeded: offers the sequence's newly full cached blocks to the prefix
  // cache (never before, so a failed step leaves no block behind that claims its rows).
  void RegisterComputedBlocks(Sequence* seq);
  // Drops a sequence (finished, cancelled or failed) and releases its blocks at once.
  void Remove(Sequence* seq);

  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }

 private:
  // Blocks `seq` still needs so that its first `end_row` rows have a slot.
  int BlocksNeeded(const Sequence& seq, int end_row) const;
  void AllocateBlocks(Sequence* seq, int end_row);
  void ReleaseBlocks(Sequence* seq);
  void Preempt(Sequence* seq);
  // Tries to admit the head of the waiting queue within `budget` rows; 0 if it cannot.
  int TryAdmit(Sequence* seq, int budget, SchedulerOutput* out);

  SchedulerConfig config_;
  KvBlockManager* block_manager_;
  std::vector<Sequence*> running_;  // sorted by arrival_index (oldest first)
  std::deque<Sequence*> waiting_;
  int64_t num_preemptions_ = 0;
};

}  // namespace glm4v::worker
