#include "tools/loadgen/report.h"

#include <vector>

#include "gtest/gtest.h"
#include "tools/loadgen/latency_stats.h"

namespace glm4v::loadgen {
namespace {

TEST(LatencyStatsTest, PercentilesInterpolateLikeNumpy) {
  std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(PercentileOfSorted(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(PercentileOfSorted(v, 0.9), 3.7);  // numpy.percentile([1,2,3,4], 90)
  EXPECT_DOUBLE_EQ(PercentileOfSorted(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(PercentileOfSorted(v, 1.0), 4);
  EXPECT_DOUBLE_EQ(PercentileOfSorted({7}, 0.99), 7);
}

TEST(LatencyStatsTest, SummarizeSortsAndHandlesEmpty) {
  LatencySummary s = Summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.mean, 3);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 5);
  EXPECT_DOUBLE_EQ(s.p50, 3);
  EXPECT_DOUBLE_EQ(s.p99, 4.96);
  EXPECT_EQ(Summarize({}).count, 0u);
}

TEST(LatencyStatsTest, P99OfAThousand) {
  std::vector<double> v;
  for (int i = 1; i <= 1000; ++i) v.push_back(i);
  LatencySummary s = Summarize(v);
  EXPECT_NEAR(s.p90, 900.1, 1e-9);
  EXPECT_NEAR(s.p99, 990.01, 1e-9);
}

RequestRecord Ok(double ttft, double e2e, int tokens) {
  RequestRecord r;
  r.ttft_ms = ttft;
  r.e2e_ms = e2e;
  r.output_tokens = tokens;
  r.prompt_tokens = 10;
  return r;
}

TEST(ReportTest, TpotExcludesTheFirstToken) {
  EXPECT_DOUBLE_EQ(Ok(100, 190, 10).tpot_ms(), 10);
  EXPECT_LT(Ok(100, 100, 1).tpot_ms(), 0);
}

TEST(ReportTest, SloGoodput) {
  Slo slo{200, 20};
  EXPECT_TRUE(MeetsSlo(Ok(150, 150 + 9 * 15, 10), slo));
  EXPECT_FALSE(MeetsSlo(Ok(250, 250 + 9 * 15, 10), slo));  // TTFT too slow
  EXPECT_FALSE(MeetsSlo(Ok(150, 150 + 9 * 25, 10), slo));  // TPOT too slow
  EXPECT_TRUE(MeetsSlo(Ok(150, 150, 1), slo));               // one token: no TPOT
  RequestRecord failed = Ok(1, 1, 1);
  failed.status = "UNAVAILABLE";
  EXPECT_FALSE(MeetsSlo(failed, slo));
  EXPECT_TRUE(MeetsSlo(Ok(5000, 99999, 10), Slo{}));  // no bounds: every success is good
}

TEST(ReportTest, AggregatesThroughputErrorsAndGoodput) {
  std::vector<RequestRecord> recs = {Ok(100, 190, 10), Ok(300, 390, 10), Ok(100, 100, 1)};
  recs[2].has_image = true;
  RequestRecord e1, e2;
  e1.status = e2.status = "RESOURCE_EXHAUSTED";
  recs.push_back(e1);
  recs.push_back(e2);
  LoadReport r = BuildReport(recs, 2.0, Slo{200, 0});
  EXPECT_EQ(r.requests, 5);
  EXPECT_EQ(r.succeeded, 3);
  EXPECT_EQ(r.image_requests, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors["RESOURCE_EXHAUSTED"], 2);
  EXPECT_EQ(r.output_tokens, 21);
  EXPECT_EQ(r.input_tokens, 30);
  EXPECT_DOUBLE_EQ(r.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(r.output_throughput, 10.5);
  EXPECT_EQ(r.good_requests, 2);
  EXPECT_DOUBLE_EQ(r.goodput, 1.0);
  EXPECT_EQ(r.ttft.count, 3u);
  EXPECT_EQ(r.tpot.count, 2u);  // the one-token answer has no TPOT
  EXPECT_DOUBLE_EQ(r.e2e.max, 390);

  nlohmann::json j = ReportToJson(r);
  EXPECT_EQ(j["errors"]["RESOURCE_EXHAUSTED"], 2);
  EXPECT_DOUBLE_EQ(j["ttft_ms"]["p50"].get<double>(), 100);
  EXPECT_NE(FormatReport(r).find("RESOURCE_EXHAUSTED"), std::string::npos);
}

}  // namespace
}  // namespace glm4v::loadgen
