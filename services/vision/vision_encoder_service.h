// glm4v.internal.VisionEncoder: image bytes -> vision features, through the feature cache and
// the batching tower.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#include "protos/glm4v/internal/vision.grpc.pb.h"
#include "services/common/drain_gate.h"
#include "services/vision/encode_batcher.h"
#include "services/vision/feature_cache.h"
#include "services/vision/image/image_types.h"
#include "services/vision/image/preprocess.h"
#include "services/vision/vision_metrics.h"

namespace glm4v {

class VisionEncoderService final : public internal::VisionEncoder::Service {
 public:
  struct Options {
    int image_size = 1120;  // vision_config.image_size
    DecodeLimits limits;
    PreprocessOptions preprocess;
    int max_images_per_request = 16;
    // What the feature cache keeps (and every answer is made from, hit or miss): f32, or bf16
    // at half the memory (what a bfloat16 wire carries anyway).
    DType cache_dtype = DType::kF32;
  };

  // Nothing is owned; all must outlive the service.
  VisionEncoderService(Options options, EncodeBatcher* batcher, FeatureCache* cache,
                       DrainGate* gate, const VisionMetrics* metrics)
      : options_(options), batcher_(batcher), cache_(cache), gate_(gate), metrics_(metrics) {}

  grpc::Status Encode(grpc::ServerContext* context, const internal::EncodeRequest* request,
                      internal::EncodeResponse* response) override;

 private:
  grpc::Status EncodeImages(grpc::ServerContext* context, const internal::EncodeRequest& request,
                            internal::EncodeResponse* response);

  // An image some request is encoding right now: requests that bring the same picture meanwhile
  // wait for it instead of encoding it again (a burst of one new image costs one encode).
  struct InFlight {
    absl::Notification done;
    absl::Status status;                     // set before done
    std::shared_ptr<const Tensor> features;  // set before done
  };
  // The entry for `hash`: (entry, true) when the caller now owns it and must Resolve it.
  std::pair<std::shared_ptr<InFlight>, bool> JoinOrStart(const std::string& hash);
  void Resolve(const std::string& hash, const std::shared_ptr<InFlight>& entry,
               absl::Status status, std::shared_ptr<const Tensor> features);

  absl::Mutex inflight_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<InFlight>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);

  const Options options_;
  EncodeBatcher* batcher_;
  FeatureCache* cache_;
  DrainGate* gate_;
  const VisionMetrics* metrics_;
};

}  // namespace glm4v
