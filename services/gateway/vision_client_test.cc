// The gateway's vision client spreads Encode calls over every address its target resolves to
// (gRPC round_robin; in Kubernetes the headless Service's pods), here two gRPC servers named by
// one ipv4: target. The servers count the calls and answer one feature per image.
#include "services/gateway/vision_client.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "protos/glm4v/internal/vision.grpc.pb.h"

namespace glm4v {
namespace {

class CountingVision final : public internal::VisionEncoder::Service {
 public:
  grpc::Status Encode(grpc::ServerContext*, const internal::EncodeRequest* request,
                      internal::EncodeResponse* response) override {
    ++calls;
    for (int i = 0; i < request->images_size(); ++i) {
      response->add_features()->set_content_hash(absl::StrCat("image-", i));
      response->add_cache_hit(false);
    }
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

struct TestServer {
  CountingVision service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  TestServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
  }
  ~TestServer() { server->Shutdown(); }
};

TEST(VisionClientTest, SpreadsCallsOverEveryResolvedAddress) {
  TestServer a, b;
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b.port, 0);
  VisionClient client(absl::StrCat("ipv4:127.0.0.1:", a.port, ",127.0.0.1:", b.port),
                      internal::FEATURE_DTYPE_FLOAT32, /*metrics=*/nullptr);
  v1::ImagePart image;
  image.set_data("not decoded by the test servers");
  for (int i = 0; i < 20; ++i) {
    auto response =
        client.Encode({&image}, absl::StrCat("r", i), absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(response.ok()) << response.status();
  }
  EXPECT_EQ(a.service.calls + b.service.calls, 20);
  EXPECT_GE(a.service.calls, 5) << "round robin: both servers take calls";
  EXPECT_GE(b.service.calls, 5);
}

}  // namespace
}  // namespace glm4v
