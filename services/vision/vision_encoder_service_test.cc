// The vision service's request path with a stand-in tower (the real batcher, feature cache and
// decoding; the encode function counts the images it is given): a burst of requests bringing
// the same new picture costs one encode and every one of them gets its features; a failed
// encode reaches the requests that waited for it instead of leaving them hanging.
#include "services/vision/vision_encoder_service.h"

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/metrics/registry.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"
#include "services/common/drain_gate.h"

namespace glm4v {
namespace {

std::string Image0() {
  std::ifstream in("tests/data/tiny-glm4v/image0.png", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Fixture {
  std::atomic<int> encoded{0};
  std::atomic<bool> fail{false};
  metrics::Registry registry;
  VisionMetrics vision_metrics = VisionMetrics::Register(&registry).value();
  EncodeBatcher batcher{{},
                        [this](const std::vector<const PixelTensor*>& images)
                            -> absl::StatusOr<std::vector<Tensor>> {
                          absl::SleepFor(absl::Milliseconds(300));  // a slow tower
                          encoded += static_cast<int>(images.size());
                          if (fail) return absl::InternalError("tower exploded");
                          std::vector<Tensor> out;
                          for (size_t i = 0; i < images.size(); ++i) {
                            out.push_back(Tensor::FromF32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
                          }
                          return out;
                        },
                        {}};
  FeatureCache cache{16};
  DrainGate gate;
  VisionEncoderService service{VisionEncoderService::Options{}, &batcher, &cache, &gate,
                               &vision_metrics};

  std::vector<grpc::Status> Burst(int n, std::vector<internal::EncodeResponse>* responses) {
    std::vector<grpc::Status> statuses(n);
    responses->assign(n, {});
    std::vector<std::thread> threads;
    const std::string png = Image0();
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i]() {
        internal::EncodeRequest request;
        request.add_images()->set_data(png);
        grpc::ServerContext context;
        statuses[i] = service.Encode(&context, &request, &(*responses)[i]);
      });
    }
    for (auto& t : threads) t.join();
    return statuses;
  }
};

TEST(VisionEncoderServiceTest, ABurstOfOneNewImageIsEncodedOnce) {
  Fixture f;
  std::vector<internal::EncodeResponse> responses;
  std::vector<grpc::Status> statuses = f.Burst(6, &responses);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    ASSERT_EQ(responses[i].features_size(), 1);
    EXPECT_EQ(responses[i].features(0).data(), responses[0].features(0).data());
  }
  EXPECT_EQ(f.encoded, 1);
  // Afterwards the cache answers.
  statuses = f.Burst(2, &responses);
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_TRUE(responses[0].cache_hit(0));
  EXPECT_EQ(f.encoded, 1);
}

TEST(VisionEncoderServiceTest, AFailedEncodeReachesTheRequestsWaitingForIt) {
  Fixture f;
  f.fail = true;
  std::vector<internal::EncodeResponse> responses;
  const absl::Time start = absl::Now();
  std::vector<grpc::Status> statuses = f.Burst(4, &responses);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (const grpc::Status& s : statuses) EXPECT_FALSE(s.ok());
  EXPECT_EQ(f.encoded, 1);
  // The failure is not cached: the next request encodes again (and now succeeds).
  f.fail = false;
  statuses = f.Burst(1, &responses);
  EXPECT_TRUE(statuses[0].ok()) << statuses[0].error_message();
  EXPECT_EQ(f.encoded, 2);
}

}  // namespace
}  // namespace glm4v
