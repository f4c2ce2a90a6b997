// ModelRunner over the GLM-4 Decoder (model/decoder.h) and a PagedKvCache on the decoder's
// backend: the single-rank runner (CPU now; the same code on any Backend).
#pragma once

#include <memory>
#include <string>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "worker/model_runner.h"

namespace glm4v::worker {

class DecoderModelRunner : public ModelRunner {
 public:
  // Loads config.json and the decoder weights of a checkpoint directory onto `backend`.
  static absl::StatusOr<std::unique_ptr<DecoderModelRunner>> Load(const std::string& model_dir,
                                                                  Backend* backend);
  // Shares an already loaded decoder (several engines over one set of weights).
  explicit DecoderModelRunner(std::shared_ptr<const Decoder> decoder);

  const ModelConfig& config() const override { return decoder_->config(); }
  KvCacheShape KvBlockShape(int block_size) const override;
  size_t kv_element_size() const override { return sizeof(float); }
  int64_t kv_memory_capacity_bytes() const override;
  absl::Status AllocateKvCache(const KvCacheShape& shape) override;
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override;

 private:
  std::shared_ptr<const Decoder> decoder_;
  std::unique_ptr<PagedKvCache> cache_;
};

}  // namespace glm4v::worker
