// A model runner that does no math: each step returns logits rows copied from a fixed pool
// (real-vocabulary rows a benchmark prepares), so the engine's host cost per step (scheduling,
// block allocation, sampling, streaming) can be measured at real sizes on any machine.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/tensor.h"
#include "worker/model_runner.h"

namespace glm4v::worker::testing {

class NullModelRunner : public ModelRunner {
 public:
  // `rows`: the pool, each config.padded_vocab_size long; row r of a step gets pool row
  // (step + r) % size. The copy into the output (what a device-to-host logits copy costs)
  // is the runner's whole step.
  NullModelRunner(ModelConfig config, std::vector<std::vector<float>> rows);

  const ModelConfig& config() const override { return config_; }
  KvCacheShape KvBlockShape(int block_size) const override;
  size_t kv_element_size() const override { return 2; }
  int64_t kv_memory_capacity_bytes() const override { return 0; }
  absl::Status AllocateKvCache(const KvCacheShape& shape) override { return absl::OkStatus(); }
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override;

 private:
  const ModelConfig config_;
  const std::vector<std::vector<float>> rows_;
  // Reused across steps (no page faults per step); the engine samples it in place before the
  // next Execute.
  std::shared_ptr<std::vector<float>> output_;
  int64_t step_ = 0;
};

}  // namespace glm4v::worker::testing
