// What rank 0 broadcasts to the other ranks of a tensor-parallel group before each model call:
// a compact little-endian binary encoding of the step (the whole DecoderBatch: tokens,
// positions, embedding rows and image feature rows, num_cached, block tables, logits mode),
// a KV cache allocation, a heartbeat (keeps idle followers inside the communicator timeout),
// a stats report (every rank then all-gathers its RankStats, rank_stats.h), or stop. All ranks run on little-endian hosts (x86-64 / aarch64).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/decoder_batch.h"

namespace glm4v::worker::tp {

struct StepMessage {
  enum class Kind : uint8_t {
    kStep = 1,
    kAllocateKvCache = 2,
    kHeartbeat = 3,
    kStop = 4,
    kReportStats = 5,
  };
  Kind kind = Kind::kHeartbeat;
  DecoderBatch batch;      // kStep
  int32_t num_blocks = 0;  // kAllocateKvCache
  int32_t block_size = 0;  // kAllocateKvCache
};

// INVALID_ARGUMENT for embeddings that are not host f32/bf16 2-D tensors.
absl::StatusOr<std::string> EncodeStepMessage(const StepMessage& message);
// INVALID_ARGUMENT for anything malformed or truncated (never reads out of bounds).
absl::StatusOr<StepMessage> DecodeStepMessage(absl::string_view bytes);

}  // namespace glm4v::worker::tp
