#include "worker/scheduler.h"

#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace glm4v::worker {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  Sequence* NewSequence(std::vector<int32_t> prompt_ids) {
    SequencePrompt prompt;
    prompt.positions.resize(prompt_ids.size());
    std::iota(prompt.positions.begin(), prompt.positions.end(), 0);
    prompt.next_position = static_cast<int32_t>(prompt_ids.size());
    prompt.token_ids = std::move(prompt_ids);
    sequences_.push_back(std::make_unique<Sequence>(
        absl::StrCat("r", sequences_.size()), sequences_.size(), std::move(prompt),
        SamplingParams{}, 0, absl::flat_hash_set<int32_t>{}, 1 << 20));
    return sequences_.back().get();
  }
  static std::vector<int32_t> Ids(int n, int first = 0) {
    std::vector<int32_t> ids(n);
    std::iota(ids.begin(), ids.end(), first);
    return ids;
  }
  // Runs the model's part of a step: every chunk computed; sampled chunks get a token.
  void Commit(Scheduler& scheduler, const SchedulerOutput& out, int32_t token = 7) {
    for (const ScheduledChunk& chunk : out.chunks) {
      scheduler.CommitChunk(chunk);
      if (chunk.sample) chunk.seq->AppendToken(token);
    }
  }

  std::vector<std::unique_ptr<Sequence>> sequences_;
};

TEST_F(SchedulerTest, ChunksALongPrefillUnderTheTokenBudget) {
  KvBlockManager blocks(64, 4, false);
  Scheduler scheduler({/*max_num_seqs=*/8, /*max_num_batched_tokens=*/8}, &blocks);
  Sequence* seq = NewSequence(Ids(20));
  scheduler.Add(seq);
  const int expected[][3] = {{0, 8, 0}, {8, 8, 0}, {16, 4, 1}, {20, 1, 1}, {21, 1, 1}};
  for (const auto& e : expected) {
    SchedulerOutput out = scheduler.Schedule();
    ASSERT_EQ(out.chunks.size(), 1u);
    EXPECT_EQ(out.chunks[0].start, e[0]);
    EXPECT_EQ(out.chunks[0].num_tokens, e[1]);
    EXPECT_EQ(out.chunks[0].sample, e[2] == 1);
    EXPECT_EQ(seq->block_table.size(), static_cast<size_t>((e[0] + e[1] + 3) / 4));
    Commit(scheduler, out);
  }
}

TEST_F(SchedulerTest, NewRequestsJoinRunningDecodesInTheSameStep) {
  KvBlockManager blocks(64, 4, false);
  Scheduler scheduler({8, 10}, &blocks);
  Sequence* a = NewSequence(Ids(5));
  scheduler.Add(a);
  Commit(scheduler, scheduler.Schedule());  // a's prefill, first token
  Sequence* b = NewSequence(Ids(30, 100));
  scheduler.Add(b);
  SchedulerOutput out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(out.chunks[0].num_tokens, 1);
  EXPECT_TRUE(out.chunks[0].sample);
  EXPECT_EQ(out.chunks[1].seq, b);
  EXPECT_EQ(out.chunks[1].num_tokens, 9);  // the rest of the budget
  EXPECT_FALSE(out.chunks[1].sample);
  EXPECT_EQ(out.num_batched_tokens, 10);
}

// Step overlap: step N+1 is planned while step N runs, its sampled row a pending token.
TEST_F(SchedulerTest, PlansTheRowOfAPendingTokenAndRegistersBlocksOnlyOnceComputed) {
  KvBlockManager blocks(64, 4, /*enable_prefix_caching=*/true);
  Scheduler scheduler({8, 64}, &blocks);
  Sequence* seq = NewSequence(Ids(7));
  scheduler.Add(seq);
  SchedulerOutput step1 = scheduler.Schedule();  // the prefill, sampling token 0
  ASSERT_EQ(step1.chunks.size(), 1u);
  ASSERT_TRUE(step1.chunks[0].sample);
  scheduler.AdvanceChunk(step1.chunks[0]);  // launched
  seq->StartPendingToken();
  EXPECT_EQ(seq->num_tokens(), 8);
  EXPECT_EQ(seq->num_known_tokens(), 7);
  EXPECT_EQ(seq->TokenId(7), Sequence::kPendingTokenId);
  EXPECT_EQ(blocks.num_cached_idle_blocks() + seq->num_registered_blocks, 0);

  // Planned while step 1 runs: the pending row, sampled, after the 7 prompt rows.
  SchedulerOutput step2 = scheduler.Schedule();
  ASSERT_EQ(step2.chunks.size(), 1u);
  EXPECT_EQ(step2.chunks[0].start, 7);
  EXPECT_EQ(step2.chunks[0].num_tokens, 1);
  EXPECT_TRUE(step2.chunks[0].sample);
  EXPECT_EQ(seq->block_table.size(), 2u);

  // Step 1 completes: its full block joins the prefix cache, the token becomes known.
  scheduler.RegisterComputedBlocks(seq);
  EXPECT_EQ(seq->num_registered_blocks, 1);
  seq->ResolvePendingToken(42);
  EXPECT_EQ(seq->TokenId(7), 42);
  EXPECT_EQ(seq->output_ids, std::vector<int32_t>{42});
  EXPECT_TRUE(seq->seen_tokens.contains(42));

  // Step 2 launched; its token is certainly the last (say max_tokens): step 3 plans nothing
  // and takes no block for it.
  scheduler.AdvanceChunk(step2.chunks[0]);
  seq->StartPendingToken();
  seq->ends_after_step = true;
  const int free_before = blocks.num_free_blocks();
  EXPECT_TRUE(scheduler.Schedule().empty());
  EXPECT_EQ(blocks.num_free_blocks(), free_before);
  // Step 2 failed: its pending token is dropped, nothing is registered for it.
  seq->DropPendingToken();
  EXPECT_EQ(seq->num_tokens(), 8);
  scheduler.Remove(seq);
  EXPECT_EQ(blocks.num_free_blocks(), 64);
}

// A sequence preempted while its step runs keeps the token that step samples and registers
// nothing (its blocks are gone).
TEST_F(SchedulerTest, APreemptedSequenceInFlightKeepsItsTokenAndRegistersNothing) {
  KvBlockManager blocks(/*num_blocks=*/3, 4, /*enable_prefix_caching=*/true);
  Scheduler scheduler({8, 64}, &blocks);
  Sequence* old_seq = NewSequence(Ids(4));
  Sequence* young = NewSequence(Ids(4, 50));
  scheduler.Add(old_seq);
  scheduler.Add(young);
  SchedulerOutput step1 = scheduler.Schedule();
  ASSERT_EQ(step1.chunks.size(), 2u);
  for (const ScheduledChunk& chunk : step1.chunks) {
    scheduler.AdvanceChunk(chunk);
    chunk.seq->StartPendingToken();
  }
  // Both need a second block for their pending row; only one is free: the young one yields.
  SchedulerOutput step2 = scheduler.Schedule();
  EXPECT_EQ(step2.num_preempted, 1);
  ASSERT_EQ(step2.chunks.size(), 1u);
  EXPECT_EQ(step2.chunks[0].seq, old_seq);
  EXPECT_EQ(young->state, Sequence::State::kWaiting);
  EXPECT_EQ(young->num_computed, 0);
  // Step 1 completes.
  scheduler.RegisterComputedBlocks(old_seq);
  scheduler.RegisterComputedBlocks(young);
  EXPECT_EQ(old_seq->num_registered_blocks, 1);
  EXPECT_EQ(young->num_registered_blocks, 0);
  old_seq->ResolvePendingToken(5);
  young->ResolvePendingToken(6);
  EXPECT_EQ(young->num_tokens(), 5);  // recomputed with its token when readmitted
}

TEST_F(SchedulerTest, MaxNumSeqsCapsTheRunningSet) {
  KvBlockManager blocks(64, 4, false);
  Scheduler scheduler({2, 100}, &blocks);
  for (int i = 0; i < 3; ++i) scheduler.Add(NewSequence(Ids(3)));
  SchedulerOutput out = scheduler.Schedule();
  EXPECT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(scheduler.running().size(), 2u);
  EXPECT_EQ(scheduler.waiting().size(), 1u);
  Commit(scheduler, out);
  scheduler.Remove(scheduler.running().front());
  out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 2u);  // the survivor decodes, the third is admitted
  EXPECT_EQ(out.chunks[1].seq, sequences_[2].get());
}

TEST_F(SchedulerTest, WaitsForBlocksInsteadOfAdmittingWhatDoesNotFit) {
  KvBlockManager blocks(4, 4, false);
  Scheduler scheduler({8, 100}, &blocks);
  Sequence* a = NewSequence(Ids(10));  // 3 blocks
  Sequence* b = NewSequence(Ids(6));   // 2 blocks: must wait
  scheduler.Add(a);
  scheduler.Add(b);
  SchedulerOutput out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(blocks.num_free_blocks(), 1);
  Commit(scheduler, out);
  scheduler.Remove(a);
  out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, b);
}

TEST_F(SchedulerTest, PreemptsTheYoungestAndRecomputesItWithItsTokens) {
  KvBlockManager blocks(4, 4, false);
  Scheduler scheduler({8, 100}, &blocks);
  Sequence* a = NewSequence(Ids(6));
  Sequence* b = NewSequence(Ids(6, 50));
  scheduler.Add(a);
  scheduler.Add(b);
  Commit(scheduler, scheduler.Schedule());  // both prefilled: 6 rows cached, 1 token out
  Commit(scheduler, scheduler.Schedule());  // 7 rows cached
  Commit(scheduler, scheduler.Schedule());  // 8 rows cached: both blocks full
  EXPECT_EQ(blocks.num_free_blocks(), 0);
  // a needs a third block for row 8: b (younger) is preempted.
  SchedulerOutput out = scheduler.Schedule();
  EXPECT_EQ(out.num_preempted, 1);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(scheduler.waiting().front(), b);
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_TRUE(b->block_table.empty());
  EXPECT_EQ(b->output_ids.size(), 3u);  // generated tokens are kept
  EXPECT_EQ(b->num_preemptions, 1);
  EXPECT_EQ(scheduler.num_preemptions(), 1);
  Commit(scheduler, out);

  scheduler.Remove(a);
  EXPECT_EQ(blocks.num_free_blocks(), 4);
  out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, b);
  EXPECT_EQ(out.chunks[0].start, 0);
  EXPECT_EQ(out.chunks[0].num_tokens, 9);  // prompt + the 3 generated tokens
  EXPECT_TRUE(out.chunks[0].sample);
}

TEST_F(SchedulerTest, TheYoungestPreemptsItselfRatherThanAnOlderSequence) {
  KvBlockManager blocks(5, 4, false);
  Scheduler scheduler({8, 100}, &blocks);
  Sequence* a = NewSequence(Ids(10));  // 3 blocks, room to grow to 12 rows
  Sequence* b = NewSequence(Ids(8));   // 2 blocks, full after prefill
  scheduler.Add(a);
  scheduler.Add(b);
  Commit(scheduler, scheduler.Schedule());
  // b needs a block for row 8 and none is free; a needs none. b must yield, not a.
  SchedulerOutput out = scheduler.Schedule();
  EXPECT_EQ(out.num_preempted, 1);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(scheduler.waiting().front(), b);
}

TEST_F(SchedulerTest, ReusesCachedPrefixBlocksAndSharesThem) {
  KvBlockManager blocks(16, 4, true);
  Scheduler scheduler({8, 100}, &blocks);
  Sequence* a = NewSequence(Ids(10));
  scheduler.Add(a);
  Commit(scheduler, scheduler.Schedule());  // rows 0..9 cached: blocks 0 and 1 are full

  std::vector<int32_t> b_ids = Ids(9);
  b_ids.push_back(500);
  b_ids.push_back(501);
  Sequence* b = NewSequence(b_ids);
  scheduler.Add(b);
  SchedulerOutput out = scheduler.Schedule();
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[1].seq, b);
  EXPECT_EQ(out.chunks[1].start, 8);
  EXPECT_EQ(out.chunks[1].num_tokens, 3);
  EXPECT_EQ(b->cached_prompt_tokens, 8);
  EXPECT_EQ(b->block_table[0], a->block_table[0]);
  EXPECT_EQ(b->block_table[1], a->block_table[1]);
  EXPECT_NE(b->block_table[2], a->block_table[2]);
  EXPECT_EQ(blocks.ref_count(a->block_table[0]), 2);
  Commit(scheduler, out);

  // An identical whole-block prompt still computes its last row (it needs its logits).
  Sequence* c = NewSequence(Ids(8));
  scheduler.Add(c);
  out = scheduler.Schedule();
  EXPECT_EQ(out.chunks.back().seq, c);
  EXPECT_EQ(out.chunks.back().start, 4);
  EXPECT_EQ(out.chunks.back().num_tokens, 4);

  scheduler.Remove(a);
  scheduler.Remove(b);
  scheduler.Remove(c);
  EXPECT_EQ(blocks.num_free_blocks(), 16);
  for (int block = 0; block < 16; ++block) EXPECT_EQ(blocks.ref_count(block), 0);
  EXPECT_GT(blocks.num_cached_idle_blocks(), 0);
}

TEST_F(SchedulerTest, AdmissionCountsIdleCachedHitsAgainstFreeSpace) {
  KvBlockManager blocks(3, 4, true);
  Scheduler scheduler({8, 100}, &blocks);
  Sequence* a = NewSequence(Ids(9));
  scheduler.Add(a);
  Commit(scheduler, scheduler.Schedule());
  scheduler.Remove(a);  // 2 idle cached blocks + 1 free
  ASSERT_EQ(blocks.num_cached_idle_blocks(), 2);
  // Same 8-row prefix plus 5 new rows: 2 hits + 2 new blocks > 3 blocks. It must wait rather
  // than evict its own hits.
  std::vector<int32_t> ids = Ids(8);
  for (int i = 0; i < 5; ++i) ids.push_back(600 + i);
  Sequence* b = NewSequence(ids);
  scheduler.Add(b);
  EXPECT_TRUE(scheduler.Schedule().empty());
  EXPECT_EQ(blocks.num_cached_idle_blocks(), 2);
}

// Many sequences with shared prefixes through a tiny cache, random arrivals and
// cancellations: every request finishes with its full output, block accounting matches the
// block tables every step, and nothing leaks.
TEST_F(SchedulerTest, RandomWorkloadFinishesEverythingAndLeaksNothing) {
  constexpr int kBlocks = 24, kBlockSize = 4;
  KvBlockManager blocks(kBlocks, kBlockSize, true);
  Scheduler scheduler({6, 16}, &blocks);
  std::mt19937 rng(12345);
  std::vector<int> target_outputs;
  std::vector<bool> cancelled;
  constexpr int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    const int prompt_len = 1 + static_cast<int>(rng() % 40);
    std::vector<int32_t> ids = Ids(prompt_len, (rng() % 3) * 1000);  // 3 shared prefixes
    NewSequence(ids);
    target_outputs.push_back(1 + static_cast<int>(rng() % (kBlocks * kBlockSize - prompt_len)));
    cancelled.push_back(false);
  }
  int next_arrival = 0, finished = 0, steps = 0, preempted_steps = 0;
  while (finished < kRequests) {
    ASSERT_LT(++steps, 20000) << "no progress: deadlock";
    if (next_arrival < kRequests && rng() % 2 == 0) {
      scheduler.Add(sequences_[next_arrival++].get());
    }
    SchedulerOutput out = scheduler.Schedule();
    if (out.num_preempted > 0) ++preempted_steps;
    EXPECT_LE(out.num_batched_tokens, 16);
    EXPECT_LE(scheduler.running().size(), 6u);

    // Every block's ref count equals the number of tables holding it.
    std::vector<int> holders(kBlocks, 0);
    for (Sequence* seq : scheduler.running()) {
      for (int32_t block : seq->block_table) ++holders[block];
    }
    int in_use = 0;
    for (int block = 0; block < kBlocks; ++block) {
      ASSERT_EQ(blocks.ref_count(block), holders[block]) << "block " << block;
      in_use += holders[block] > 0;
    }
    ASSERT_EQ(in_use + blocks.num_free_blocks(), kBlocks);
    for (Sequence* seq : scheduler.waiting()) ASSERT_TRUE(seq->block_table.empty());

    for (const ScheduledChunk& chunk : out.chunks) {
      Sequence* seq = chunk.seq;
      ASSERT_EQ(chunk.start, seq->num_computed);
      ASSERT_LE(chunk.start + chunk.num_tokens,
                static_cast<int>(seq->block_table.size()) * kBlockSize);
      scheduler.CommitChunk(chunk);
      if (!chunk.sample) continue;
      ASSERT_EQ(seq->num_computed, seq->num_tokens());
      seq->AppendToken(static_cast<int32_t>(seq->num_tokens() % 50));
      const int index = static_cast<int>(seq->arrival_index);
      if (static_cast<int>(seq->output_ids.size()) == target_outputs[index]) {
        scheduler.Remove(seq);
        ++finished;
      }
    }
    // Cancel a random live request now and then (running or waiting).
    if (rng() % 25 == 0 && next_arrival > 0) {
      const int victim = static_cast<int>(rng() % next_arrival);
      Sequence* seq = sequences_[victim].get();
      if (seq->state != Sequence::State::kFinished) {
        scheduler.Remove(seq);
        cancelled[victim] = true;
        ++finished;
      }
    }
  }
  EXPECT_TRUE(scheduler.idle());
  EXPECT_EQ(blocks.num_free_blocks(), kBlocks);
  for (int block = 0; block < kBlocks; ++block) EXPECT_EQ(blocks.ref_count(block), 0);
  for (int i = 0; i < kRequests; ++i) {
    if (!cancelled[i]) {
      EXPECT_EQ(static_cast<int>(sequences_[i]->output_ids.size()), target_outputs[i]);
    }
  }
  EXPECT_GT(preempted_steps, 0);  // the cache was small enough to exercise preemption
  EXPECT_GT(blocks.stats().prefix_hits, 0);
}

}  // namespace
}  // namespace glm4v::worker
