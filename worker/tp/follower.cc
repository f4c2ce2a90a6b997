#include "worker/tp/follower.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/process_memory.h"
#include "common/status_macros.h"
#include "model/kv_cache.h"
#include "absl/time/clock.h"
#include "worker/tp/rank_stats.h"
#include "worker/tp/step_message.h"

namespace glm4v::worker::tp {

absl::Status RunFollower(const Decoder& decoder, comm::Communicator& control,
                         std::optional<DType> kv_dtype) {
  Backend* backend = decoder.backend();
  const DType cache_dtype = kv_dtype.value_or(backend->activation_dtype());
  const int rank = control.rank();
  auto context = [rank](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("tensor-parallel rank ", rank, ": ", s.message()));
  };
  std::unique_ptr<PagedKvCache> cache;
  RankStats stats;
  stats.weight_bytes = static_cast<double>(decoder.weights().HeldBytes());
  while (true) {
    std::string bytes;
    if (absl::Status s = comm::BroadcastString(control, &bytes, /*root=*/0); !s.ok()) {
      return context(s);
    }
    absl::StatusOr<StepMessage> message = DecodeStepMessage(bytes);
    if (!message.ok()) return context(message.status());
    switch (message->kind) {
      case StepMessage::Kind::kHeartbeat:
        break;
      case StepMessage::Kind::kStop:
        return absl::OkStatus();
      case StepMessage::Kind::kAllocateKvCache:
        if (cache != nullptr || message->num_blocks <= 0 || message->block_size <= 0) {
          return context(absl::FailedPreconditionError("bad KV cache allocation message"));
        }
        {
          absl::StatusOr<PagedKvCache> allocated = backend->AllocateKvCache(
              decoder.CacheShape(message->num_blocks, message->block_size), cache_dtype);
          if (!allocated.ok()) return context(allocated.status());
          cache = std::make_unique<PagedKvCache>(*std::move(allocated));
          stats.kv_cache_bytes = static_cast<double>(KvCacheBytes(*cache));
        }
        break;
      case StepMessage::Kind::kReportStats: {
        stats.resident_bytes = static_cast<double>(ReadResidentKiB().value_or(0) * 1024);
        absl::StatusOr<std::vector<RankStats>> all = GatherRankStats(control, stats);
        if (!all.ok()) return context(all.status());
        break;
      }
      case StepMessage::Kind::kStep: {
        if (cache == nullptr) {
          return context(absl::FailedPreconditionError("step before KV cache allocation"));
        }
        // Rank 0 validated the batch; any failure here leaves the group out of step.
        const absl::Time start = absl::Now();
        absl::StatusOr<DecoderOutput> output = decoder.Forward(message->batch, cache.get());
        if (!output.ok()) return context(output.status());
        stats.steps += 1;
        stats.step_seconds += absl::ToDoubleSeconds(absl::Now() - start);
        break;
      }
    }
  }
}

}  // namespace glm4v::worker::tp
