// glm4v.internal.VisionEncoder: image bytes -> vision features, through the feature cache and
// the batching tower.
#pragma once

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

  const Options options_;
  EncodeBatcher* batcher_;
  FeatureCache* cache_;
  DrainGate* gate_;
  const VisionMetrics* metrics_;
};

}  // namespace glm4v
