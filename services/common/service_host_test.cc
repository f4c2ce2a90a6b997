#include "services/common/service_host.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "protos/glm4v/internal/vision.grpc.pb.h"
#include "services/common/backend_channel.h"
#include "services/common/health_probe.h"

namespace glm4v {
namespace {

// A sync service with every method UNIMPLEMENTED: gRPC needs one to poll its queues.
glm4v::internal::VisionEncoder::Service placeholder_service;

ServiceHost::Options TestOptions() {
  ServiceHost::Options options;
  options.component = "test";
  options.health_services = {"test.Service"};
  options.bind_host = "127.0.0.1";
  options.drain_grace = absl::Seconds(5);
  return options;
}

TEST(ServiceHostTest, ServesHealthAndMetricsThenDrains) {
  metrics::Registry registry;
  ASSERT_TRUE(registry.AddCounter("glm4v_test_total", "test").ok());
  ServiceHost::Options options = TestOptions();
  options.registry = &registry;
  ServiceHost host(options);
  host.AddService(&placeholder_service);
  ASSERT_TRUE(host.Start().ok());
  ASSERT_GT(host.grpc_port(), 0);
  ASSERT_GT(host.metrics_port(), 0);

  auto channel = CreateBackendChannel(absl::StrCat("127.0.0.1:", host.grpc_port()));
  auto state = ProbeHealth(channel, "test.Service", absl::Seconds(5));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, ServingState::kServing);
  state = ProbeHealth(channel, "", absl::Seconds(5));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, ServingState::kServing);

  httplib::Client http("127.0.0.1", host.metrics_port());
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("glm4v_test_total"), std::string::npos);
  // /readyz follows the gRPC health status (the probe TLS deployments use).
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  host.SetServing(false);
  ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  host.SetServing(true);
  ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  // One request is in flight while the drain starts: health flips at once, new entries are
  // refused, and the drain waits for the ticket.
  auto ticket = host.gate().TryEnter();
  std::atomic<bool> drained{false};
  std::thread drainer([&]() {
    host.Drain();
    drained = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  state = ProbeHealth(channel, "test.Service", absl::Seconds(5));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, ServingState::kNotServing);
  EXPECT_FALSE(host.gate().TryEnter().has_value());
  EXPECT_FALSE(drained);
  ticket.reset();
  drainer.join();
  EXPECT_TRUE(drained);
}

TEST(ServiceHostTest, DrainGivesUpAfterTheGracePeriod) {
  ServiceHost::Options options = TestOptions();
  options.metrics_port = -1;
  options.drain_grace = absl::Milliseconds(100);
  ServiceHost host(options);
  host.AddService(&placeholder_service);
  ASSERT_TRUE(host.Start().ok());
  auto ticket = host.gate().TryEnter();
  const absl::Time start = absl::Now();
  absl::Time hook_deadline;
  host.Drain([&](absl::Time deadline) { hook_deadline = deadline; });
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(hook_deadline, start + absl::Milliseconds(100));
}

}  // namespace
}  // namespace glm4v
