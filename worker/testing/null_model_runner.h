// A model runner that does no math: each step returns logits rows copied from a fixed pool
// (real-vocabulary rows a benchmark prepares), so the engine's host cost per step (scheduling,
// block allocation, sampling, streaming) can be measured at real sizes on any machine.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

  // Stands in for a device: each step also sleeps `device_time` (a GPU step that costs the
  // host no CPU). With `sample_on_device` the runner answers ExecuteAndSample with ids alone,
  // as a runner that samples on the GPU does, and no logits row reaches the host.
  void SimulateDevice(absl::Duration device_time, bool sample_on_device) {
    device_time_ = device_time;
    sample_on_device_ = sample_on_device;
  }

  const ModelConfig& config() const override { return config_; }
  KvCacheShape KvBlockShape(int block_size) const override;
  size_t kv_element_size() const override { return 2; }
  int64_t kv_memory_capacity_bytes() const override { return 0; }
  absl::Status AllocateKvCache(const KvCacheShape& shape) override { return absl::OkStatus(); }
  absl::StatusOr<DecoderOutput> Execute(const DecoderBatch& batch) override;
  bool samples_on_device() const override { return sample_on_device_; }
  // Device time actually slept so far (a sleep overshoots by ~0.1 ms on some machines).
  double simulated_device_seconds() const { return slept_seconds_.load(); }
  // Makes the simulated device time exact on the thread that runs the steps (Linux timer
  // slack 1 ns instead of 50 us).
  absl::Status BindCallingThread() override;
  absl::StatusOr<SampledRows> ExecuteAndSample(const DecoderBatch& batch,
                                               const SamplingBatchHost& sampling) override;

 private:
  const ModelConfig config_;
  const std::vector<std::vector<float>> rows_;
  // Reused across steps (no page faults per step); the engine samples it in place before the
  // next Execute.
  std::shared_ptr<std::vector<float>> output_;
  int64_t step_ = 0;
  absl::Duration device_time_ = absl::ZeroDuration();
  bool sample_on_device_ = false;
  std::atomic<double> slept_seconds_{0.0};

  void SleepDeviceTime();
};

}  // namespace glm4v::worker::testing
