#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/exposition_parser.h"
#include "common/metrics/registry.h"
#include "common/metrics/text_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace glm4v::metrics {
namespace {

using ::testing::HasSubstr;

TEST(TextFormatTest, Names) {
  EXPECT_TRUE(IsValidMetricName("glm4v_requests_total"));
  EXPECT_TRUE(IsValidMetricName("ns:sub_metric"));
  EXPECT_TRUE(IsValidMetricName("_x9"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_TRUE(IsValidLabelName("model"));
  EXPECT_TRUE(IsValidLabelName("_x"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("1a"));
  EXPECT_FALSE(IsValidLabelName(""));
}

TEST(TextFormatTest, EscapingAndValues) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(2.5e-7), "2.5e-07");
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  const double third = 1.0 / 3;
  EXPECT_EQ(std::stod(FormatValue(third)), third);  // round-trips
}

TEST(MetricTypesTest, CounterGauge) {
  Counter c;
  c.Increment();
  c.Increment(2.5);
  c.Increment(-1);            // ignored
  c.Increment(std::nan(""));  // ignored
  EXPECT_EQ(c.Value(), 3.5);
  Gauge g;
  g.Set(10);
  g.Increment(2);
  g.Decrement(5);
  EXPECT_EQ(g.Value(), 7);
}

TEST(MetricTypesTest, HistogramBuckets) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 100.0}) h.Observe(v);
  h.Observe(std::nan(""));
  Histogram::Snapshot s = h.Snap();
  // le is inclusive: 1.0 lands in le=1, 2.0 in le=2.
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 108.0);

  EXPECT_TRUE(Histogram::ValidateBuckets({}).ok());
  auto dropped = Histogram::ValidateBuckets({1, std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, std::vector<double>{1});
  EXPECT_FALSE(Histogram::ValidateBuckets({1, 1}).ok());
  EXPECT_FALSE(Histogram::ValidateBuckets({2, 1}).ok());
  EXPECT_FALSE(Histogram::ValidateBuckets({std::nan(""), 1}).ok());
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(ExponentialBuckets(1, 10, 3), (std::vector<double>{1, 10, 100}));
  EXPECT_TRUE(Histogram::ValidateBuckets(DefaultLatencyBuckets()).ok());
}

TEST(RegistryTest, RendersExactText) {
  Registry r;
  Counter* c = r.AddCounter("app_requests_total", "Requests.\nSecond \\ line.").value();
  c->Increment(3);
  Family<Gauge>* g = r.AddGaugeFamily("app_queue_depth", "Queue depth.", {"pool", "rank"}).value();
  g->WithLabels({"b", "1"}).Set(2);
  g->WithLabels({"a\"x\\y\nz", "0"}).Set(-1.5);
  Histogram* h = r.AddHistogram("app_latency_seconds", "Latency.", {0.1, 1}).value();
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP app_requests_total Requests.\\nSecond \\\\ line.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total 3\n"
            "# HELP app_queue_depth Queue depth.\n"
            "# TYPE app_queue_depth gauge\n"
            "app_queue_depth{pool=\"a\\\"x\\\\y\\nz\",rank=\"0\"} -1.5\n"
            "app_queue_depth{pool=\"b\",rank=\"1\"} 2\n"
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{le=\"1\"} 2\n"
            "app_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum 7.55\n"
            "app_latency_seconds_count 3\n");

  // And our own strict parser reads it back, unescaping label values.
  auto parsed = ParseExposition(r.Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Value("app_queue_depth", {{"pool", "a\"x\\y\nz"}, {"rank", "0"}}), -1.5);
  EXPECT_EQ(parsed->FindFamily("app_requests_total")->help, "Requests.\nSecond \\ line.");
}

TEST(RegistryTest, LabeledHistogramAddsLe) {
  Registry r;
  auto* f = r.AddHistogramFamily("h", "x", {"stage"}, {1}).value();
  f->WithLabels({"prefill"}).Observe(0.5);
  EXPECT_THAT(r.Render(), HasSubstr("h_bucket{stage=\"prefill\",le=\"1\"} 1\n"));
  EXPECT_THAT(r.Render(), HasSubstr("h_sum{stage=\"prefill\"} 0.5\n"));
}

TEST(RegistryTest, WithLabelsReturnsStableReferences) {
  Registry r;
  auto* f = r.AddCounterFamily("c_total", "c", {"k"}).value();
  Counter* first = &f->WithLabels({"a"});
  for (int i = 0; i < 1000; ++i) f->WithLabels({std::to_string(i)});
  EXPECT_EQ(&f->WithLabels({"a"}), first);
  EXPECT_EQ(f->size(), 1001u);
}

TEST(RegistryTest, Validation) {
  Registry r;
  EXPECT_FALSE(r.AddCounter("bad-name", "x").ok());
  EXPECT_FALSE(r.AddCounterFamily("c", "x", {"__reserved"}).ok());
  EXPECT_FALSE(r.AddCounterFamily("c", "x", {"a", "a"}).ok());
  EXPECT_FALSE(r.AddCounterFamily("c", "x", {"bad-label"}).ok());
  EXPECT_FALSE(r.AddHistogramFamily("h", "x", {"le"}, {1}).ok());
  EXPECT_FALSE(r.AddHistogram("h", "x", {2, 1}).ok());

  // Identical re-registration returns the same family; any difference is rejected.
  auto* a = r.AddCounterFamily("req_total", "Requests.", {"code"}).value();
  EXPECT_EQ(r.AddCounterFamily("req_total", "Requests.", {"code"}).value(), a);
  EXPECT_EQ(r.AddCounterFamily("req_total", "Other help.", {"code"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(r.AddCounterFamily("req_total", "Requests.", {"status"}).ok());
  EXPECT_FALSE(r.AddGaugeFamily("req_total", "Requests.", {"code"}).ok());
  Histogram* h = r.AddHistogram("lat", "L.", {1, 2}).value();
  EXPECT_EQ(r.AddHistogram("lat", "L.", {1, 2}).value(), h);
  EXPECT_FALSE(r.AddHistogram("lat", "L.", {1, 3}).ok());
  // Histogram sample names clash with plain metrics.
  EXPECT_FALSE(r.AddGauge("lat_count", "x").ok());
  ASSERT_TRUE(r.AddCounter("q_sum", "x").ok());
  EXPECT_FALSE(r.AddHistogram("q", "x", {1}).ok());
}

TEST(RegistryDeathTest, WrongLabelCountAborts) {
  Registry r;
  auto* f = r.AddCounterFamily("c_total", "c", {"a", "b"}).value();
  EXPECT_DEATH(f->WithLabels({"x"}), "c_total has labels");
}

TEST(RegistryTest, DefaultRegistryIsShared) {
  Counter* c = DefaultRegistry().AddCounter("metrics_test_default_total", "t").value();
  c->Increment();
  EXPECT_THAT(DefaultRegistry().Render(), HasSubstr("metrics_test_default_total 1\n"));
}

// Many threads hammer shared and per-thread series while another thread renders and parses.
TEST(RegistryTest, ConcurrentUpdatesAndScrapes) {
  Registry r;
  Counter* total = r.AddCounter("ops_total", "ops").value();
  Gauge* gauge = r.AddGauge("inflight", "in flight").value();
  auto* by_thread = r.AddCounterFamily("ops_by_thread_total", "ops", {"thread"}).value();
  auto* hist = r.AddHistogramFamily("op_seconds", "op", {"kind"}, {0.25, 0.5, 0.75}).value();

  constexpr int kThreads = 8, kIters = 20000;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::string scrape_error;
  std::thread scraper([&] {
    while (!done.load()) {
      auto parsed = ParseExposition(r.Render());
      if (!parsed.ok()) {
        scrape_error = std::string(parsed.status().message());
        return;
      }
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Counter& mine = by_thread->WithLabels({std::to_string(t)});
      for (int i = 0; i < kIters; ++i) {
        gauge->Increment();
        total->Increment();
        mine.Increment(0.5);
        hist->WithLabels({i % 2 ? "odd" : "even"}).Observe((i % 4) * 0.25);
        gauge->Decrement();
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();
  EXPECT_EQ(scrape_error, "");
  EXPECT_GT(scrapes.load(), 0);

  EXPECT_EQ(total->Value(), kThreads * kIters);
  EXPECT_EQ(gauge->Value(), 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(by_thread->WithLabels({std::to_string(t)}).Value(), kIters * 0.5);
  }
  Histogram::Snapshot even = hist->WithLabels({"even"}).Snap();
  Histogram::Snapshot odd = hist->WithLabels({"odd"}).Snap();
  EXPECT_EQ(even.count + odd.count, static_cast<uint64_t>(kThreads * kIters));
  // even i: values 0 and 0.5 (i%4 = 0, 2); odd i: 0.25 and 0.75.
  EXPECT_EQ(even.cumulative,
            (std::vector<uint64_t>{even.count / 2, even.count, even.count, even.count}));
  EXPECT_DOUBLE_EQ(even.sum + odd.sum, kThreads * kIters / 4 * (0 + 0.25 + 0.5 + 0.75));

  auto parsed = ParseExposition(r.Render());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Value("ops_total"), kThreads * kIters);
  EXPECT_EQ(parsed->Value("op_seconds_count", {{"kind", "odd"}}), odd.count);
}

}  // namespace
}  // namespace glm4v::metrics
