#include "tools/loadgen/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace glm4v::loadgen {
namespace {

nlohmann::json SummaryToJson(const LatencySummary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"min", s.min}, {"max", s.max},
          {"p50", s.p50},     {"p90", s.p90},   {"p99", s.p99}};
}

void AppendSummary(std::string* out, const char* name, const LatencySummary& s) {
  absl::StrAppendFormat(out, "%-10s mean %9.2f  p50 %9.2f  p90 %9.2f  p99 %9.2f  max %9.2f  (n=%d)\n",
                        name, s.mean, s.p50, s.p90, s.p99, s.max, s.count);
}

}  // namespace

bool MeetsSlo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok()) return false;
  if (slo.ttft_ms > 0 && (r.ttft_ms < 0 || r.ttft_ms > slo.ttft_ms)) return false;
  // A one-token answer has no inter-token time, so it cannot miss the TPOT bound.
  if (slo.tpot_ms > 0 && r.tpot_ms() > slo.tpot_ms) return false;
  return true;
}

LoadReport BuildReport(const std::vector<RequestRecord>& records, double duration_s,
                       const Slo& slo) {
  LoadReport rep;
  rep.duration_s = duration_s;
  rep.slo = slo;
  rep.requests = static_cast<int>(records.size());
  std::vector<double> ttft, tpot, itl, e2e;
  for (const RequestRecord& r : records) {
    if (r.has_image) ++rep.image_requests;
    if (!r.ok()) {
      ++rep.errors[r.status];
      continue;
    }
    ++rep.succeeded;
    rep.input_tokens += r.prompt_tokens;
    rep.cached_input_tokens += r.cached_prompt_tokens;
    rep.output_tokens += r.output_tokens;
    if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
    if (r.tpot_ms() >= 0) tpot.push_back(r.tpot_ms());
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
    e2e.push_back(r.e2e_ms);
    if (MeetsSlo(r, slo)) ++rep.good_requests;
  }
  if (duration_s > 0) {
    rep.request_throughput = rep.succeeded / duration_s;
    rep.output_throughput = static_cast<double>(rep.output_tokens) / duration_s;
    rep.total_token_throughput =
        static_cast<double>(rep.input_tokens + rep.output_tokens) / duration_s;
    rep.goodput = rep.good_requests / duration_s;
  }
  rep.ttft = Summarize(std::move(ttft));
  rep.tpot = Summarize(std::move(tpot));
  rep.itl = Summarize(std::move(itl));
  rep.e2e = Summarize(std::move(e2e));
  return rep;
}

std::string FormatReport(const LoadReport& r) {
  std::string out = "================ glm4v load generator ================\n";
  absl::StrAppendFormat(&out, "requests            %d (%d with an image)\n", r.requests,
                        r.image_requests);
  absl::StrAppendFormat(&out, "succeeded           %d\n", r.succeeded);
  for (const auto& [code, n] : r.errors) absl::StrAppendFormat(&out, "error %-13s %d\n", code, n);
  absl::StrAppendFormat(&out, "duration            %.2f s\n", r.duration_s);
  absl::StrAppendFormat(&out, "input tokens        %d\n", r.input_tokens);
  absl::StrAppendFormat(&out, "prefix-cache hits   %d tokens (%.1f %% of input)\n",
                        r.cached_input_tokens,
                        r.input_tokens > 0 ? 100.0 * r.cached_input_tokens / r.input_tokens : 0.0);
  absl::StrAppendFormat(&out, "output tokens       %d\n", r.output_tokens);
  absl::StrAppendFormat(&out, "request throughput  %.2f req/s\n", r.request_throughput);
  absl::StrAppendFormat(&out, "output throughput   %.1f tok/s\n", r.output_throughput);
  absl::StrAppendFormat(&out, "total throughput    %.1f tok/s\n", r.total_token_throughput);
  if (r.slo.ttft_ms > 0 || r.slo.tpot_ms > 0) {
    absl::StrAppendFormat(&out, "goodput             %.2f req/s (%d good; SLO ttft<=%g ms, "
                          "tpot<=%g ms)\n",
                          r.goodput, r.good_requests, r.slo.ttft_ms, r.slo.tpot_ms);
  }
  out += "---------------- latency (ms) ----------------\n";
  AppendSummary(&out, "TTFT", r.ttft);
  AppendSummary(&out, "TPOT", r.tpot);
  AppendSummary(&out, "ITL", r.itl);
  AppendSummary(&out, "E2E", r.e2e);
  return out;
}

nlohmann::json ReportToJson(const LoadReport& r) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [code, n] : r.errors) errors[code] = n;
  return {{"duration_s", r.duration_s},
          {"requests", r.requests},
          {"succeeded", r.succeeded},
          {"errors", errors},
          {"image_requests", r.image_requests},
          {"input_tokens", r.input_tokens},
          {"cached_input_tokens", r.cached_input_tokens},
          {"output_tokens", r.output_tokens},
          {"request_throughput", r.request_throughput},
          {"output_throughput", r.output_throughput},
          {"total_token_throughput", r.total_token_throughput},
          {"slo", {{"ttft_ms", r.slo.ttft_ms}, {"tpot_ms", r.slo.tpot_ms}}},
          {"good_requests", r.good_requests},
          {"goodput", r.goodput},
          {"ttft_ms", SummaryToJson(r.ttft)},
          {"tpot_ms", SummaryToJson(r.tpot)},
          {"itl_ms", SummaryToJson(r.itl)},
          {"e2e_ms", SummaryToJson(r.e2e)}};
}

}  // namespace glm4v::loadgen
