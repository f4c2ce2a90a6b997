#include "worker/decoder_model_runner.h"

#include <unistd.h>

#include <utility>

#include "common/model_config.h"
#include "common/safetensors.h"
#include "common/status_macros.h"

namespace glm4v::worker {

absl::StatusOr<std::unique_ptr<DecoderModelRunner>> DecoderModelRunner::Load(
    const std::string& model_dir, Backend* backend) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder,
                   Decoder::Load(checkpoint, config, backend));
  return std::make_unique<DecoderModelRunner>(std::shared_ptr<const Decoder>(std::move(decoder)));
}

DecoderModelRunner::DecoderModelRunner(std::shared_ptr<const Decoder> decoder)
    : decoder_(std::move(decoder)) {}

KvCacheShape DecoderModelRunner::KvBlockShape(int block_size) const {
  return decoder_->CacheShape(/*num_blocks=*/0, block_size);
}

int64_t DecoderModelRunner::kv_memory_capacity_bytes() const {
  if (decoder_->backend()->device() != Device::kCpu) return 0;  // device runners report theirs
  const long pages = sysconf(_SC_AVPHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<int64_t>(pages) * page_size;
}

absl::Status DecoderModelRunner::AllocateKvCache(const KvCacheShape& shape) {
  if (cache_ != nullptr) return absl::FailedPreconditionError("KV cache already allocated");
  cache_ = std::make_unique<PagedKvCache>(shape);
  return absl::OkStatus();
}

absl::StatusOr<DecoderOutput> DecoderModelRunner::Execute(const DecoderBatch& batch) {
  if (cache_ == nullptr) return absl::FailedPreconditionError("KV cache not allocated");
  ASSIGN_OR_RETURN(DecoderOutput output, decoder_->Forward(batch, cache_.get()));
  if (output.logits.defined() && output.logits.device() != Device::kCpu) {
    // The sampler reads host memory.
    ASSIGN_OR_RETURN(output.logits, decoder_->backend()->Download(output.logits));
  }
  return output;
}

}  // namespace glm4v::worker
