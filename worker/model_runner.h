// The engine's view of the model: one forward step over a batch of sequence chunks, writing and
// reading a paged KV cache the runner owns. Everything above this interface (scheduling, block
// management, sampling) is device-agnostic; a CPU, CUDA or tensor-parallel runner plugs in here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "kernels/sampling_batch.h"
#include "model/decoder_batch.h"
#include "model/kv_cache.h"

namespace glm4v::worker {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const ModelConfig& config() const = 0;
  // KV geometry of this runner (layers, KV heads held by this rank, head dim) for blocks of
  // `block_size` tokens; num_blocks is left 0.
  virtual KvCacheShape KvBlockShape(int block_size) const = 0;
  // Decode context parallelism: each rank's cache holds 1/size of every sequence's tokens, so
  // one physical block of `block_size` slots holds block_size * size tokens of a sequence (the
  // engine's blocks are that large). 1 without it.
  virtual int context_parallel_size() const { return 1; }
  // Bytes per stored KV element (4 for the f32 CPU cache, 2 for bf16 on GPUs).
  virtual size_t kv_element_size() const = 0;
  // Memory a fraction-based KV budget is taken from (free device memory after the weights);
  // 0 when the runner cannot tell.
  virtual int64_t kv_memory_capacity_bytes() const = 0;
  // Allocates the paged cache once, before the first Execute.
  virtual absl::Status AllocateKvCache(const KvCacheShape& shape) = 0;
  // One forward step; logits rows per batch.sequences[i].logits (see DecoderOutput).
  virtual absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) = 0;

  // Makes the runner usable from the calling thread: the engine runs its steps on a thread of
  // its own (worker/step_executor.h) and calls this there once before the first step.
  virtual absl::Status BindCallingThread() { return absl::OkStatus(); }

  // Bytes of model weights this runner (this rank, for a tensor-parallel group) holds on its
  // device; 0 when it cannot tell (startup memory logs).
  virtual int64_t weight_bytes() const { return 0; }

  // Whether ExecuteAndSample is available: the step's rows are sampled where the logits are
  // (the CUDA backend) and only the ids and the asked logprobs reach the host.
  virtual bool samples_on_device() const { return false; }
  // One step, as Execute, whose logits rows (sequences with Logits::kLast, in batch order, one
  // row each) are sampled with `sampling`'s rows.
  virtual absl::StatusOr<SampledRows> ExecuteAndSample(const DecoderBatch& batch,
                                                       const SamplingBatchHost& sampling) {
    return absl::UnimplementedError("this model runner does not sample on the device");
  }
};

}  // namespace glm4v::worker
