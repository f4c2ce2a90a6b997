#include "common/metrics/http_exporter.h"

#include <httplib.h>

#include <atomic>
#include <string>

#include "common/metrics/exposition_parser.h"
#include "common/metrics/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v::metrics {
namespace {

using ::testing::HasSubstr;

TEST(HttpExporterTest, ServesParsableMetricsAndProbes) {
  Registry registry;
  auto* req =
      registry.AddCounterFamily("test_requests_total", "Requests \"served\".", {"code"}).value();
  req->WithLabels({"200"}).Increment(7);
  req->WithLabels({"5\"0\\0\n"}).Increment();
  registry.AddGauge("test_inflight", "In flight.").value()->Set(3);
  auto* lat = registry
                  .AddHistogramFamily("test_latency_seconds", "Latency.", {"stage"},
                                      DefaultLatencyBuckets())
                  .value();
  for (double v : {0.0005, 0.02, 0.3, 4.0, 1000.0}) lat->WithLabels({"decode"}).Observe(v);

  std::atomic<bool> ready{false};
  HttpExporter::Options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  opts.registry = &registry;
  opts.ready_check = [&]() {
    return ready.load() ? absl::OkStatus() : absl::UnavailableError("warming up");
  };
  auto exporter = HttpExporter::Start(opts);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const int port = (*exporter)->port();
  ASSERT_GT(port, 0);

  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  auto parsed = ParseExposition(res->body);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << res->body;
  EXPECT_EQ(parsed->Value("test_requests_total", {{"code", "200"}}), 7);
  EXPECT_EQ(parsed->Value("test_requests_total", {{"code", "5\"0\\0\n"}}), 1);
  EXPECT_EQ(parsed->Value("test_inflight"), 3);
  EXPECT_EQ(parsed->Value("test_latency_seconds_count", {{"stage", "decode"}}), 5);
  EXPECT_EQ(parsed->Value("test_latency_seconds_bucket", {{"stage", "decode"}, {"le", "0.001"}}),
            1);
  EXPECT_EQ(parsed->Value("test_latency_seconds_bucket", {{"stage", "decode"}, {"le", "100"}}), 4);
  EXPECT_EQ(parsed->FindFamily("test_requests_total")->help, "Requests \"served\".");

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_THAT(not_ready->body, HasSubstr("warming up"));
  ready = true;
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  EXPECT_EQ(client.Get("/nope")->status, 404);

  // Updates show up on the next scrape.
  req->WithLabels({"200"}).Increment();
  auto again = ParseExposition(client.Get("/metrics")->body);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Value("test_requests_total", {{"code", "200"}}), 8);

  (*exporter)->Stop();
  (*exporter)->Stop();  // idempotent
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/healthz"));
}

TEST(HttpExporterTest, FixedPortAndBindFailure) {
  Registry registry;
  HttpExporter::Options opts;
  opts.host = "127.0.0.1";
  opts.registry = &registry;
  auto first = HttpExporter::Start(opts);
  ASSERT_TRUE(first.ok()) << first.status();
  // The same port again cannot be bound while the first server holds it.
  opts.port = (*first)->port();
  auto second = HttpExporter::Start(opts);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(std::to_string(opts.port)));
  const int port = opts.port;
  first->reset();  // destructor stops it; the port is free again
  auto third = HttpExporter::Start(opts);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->port(), port);
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "");
}

TEST(HttpExporterTest, StartStopRepeatedly) {
  Registry registry;
  for (int i = 0; i < 20; ++i) {
    HttpExporter::Options opts;
    opts.host = "127.0.0.1";
    opts.registry = &registry;
    auto e = HttpExporter::Start(opts);
    ASSERT_TRUE(e.ok()) << e.status();
  }
}

}  // namespace
}  // namespace glm4v::metrics
