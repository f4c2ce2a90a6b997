// Groups concurrent image-encode requests into vision-tower batches.
//
// The tower's cost per image drops with batch size (weights are read once per batch), so a
// request waits up to max_wait for others to join it, or less when max_batch images are queued.
// One thread runs the batches; callers block in Encode() until theirs is done.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metric_types.h"
#include "common/tensor.h"
#include "services/vision/image/image_types.h"

namespace glm4v {

class EncodeBatcher {
 public:
  // Encodes a batch: returns one f32 [rows, hidden] host tensor per image, in order.
  using EncodeFn =
      std::function<absl::StatusOr<std::vector<Tensor>>(const std::vector<const PixelTensor*>&)>;

  struct Options {
    int max_batch = 8;
    absl::Duration max_wait = absl::Milliseconds(5);
    int max_queue = 1024;  // images waiting; beyond it RESOURCE_EXHAUSTED
  };
  struct Metrics {  // any may be null
    metrics::Histogram* encode_seconds = nullptr;
    metrics::Histogram* batch_size = nullptr;
    metrics::Gauge* queue_depth = nullptr;
  };

  EncodeBatcher(Options options, EncodeFn encode, Metrics metrics);
  // Fails whatever is still queued with UNAVAILABLE and joins the batch thread.
  ~EncodeBatcher();

  // Queues the images together and blocks until all were encoded; one result per image.
  // DEADLINE_EXCEEDED if they had not all run by `deadline` (the rest is then skipped),
  // RESOURCE_EXHAUSTED when the queue cannot take them.
  absl::StatusOr<std::vector<Tensor>> Encode(std::vector<PixelTensor> images, absl::Time deadline);

 private:
  struct Pending {
    PixelTensor pixels;
    absl::Time enqueued;
    bool done = false;
    bool abandoned = false;
    absl::StatusOr<Tensor> result;
  };

  void Loop();
  void UpdateQueueDepth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const EncodeFn encode_;
  const Metrics metrics_;

  absl::Mutex mu_;
  std::deque<std::shared_ptr<Pending>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace glm4v
