// What one load-generation run measured, and its text / JSON renderings.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tools/loadgen/latency_stats.h"

namespace glm4v::loadgen {

// One request as the client saw it.
struct RequestRecord {
  bool has_image = false;
  std::string status = "OK";  // gRPC code name
  double e2e_ms = 0;
  double ttft_ms = -1;        // < 0: no token arrived
  std::vector<double> itl_ms;  // gaps between token-carrying stream messages
  int output_tokens = 0;
  int prompt_tokens = 0;      // from the server's usage (after the image splice)
  int cached_prompt_tokens = 0;  // of those, served from the worker's prefix cache
  bool ok() const { return status == "OK"; }
  // Mean time per output token after the first; < 0 with fewer than 2 tokens.
  double tpot_ms() const {
    return output_tokens > 1 ? (e2e_ms - ttft_ms) / (output_tokens - 1) : -1;
  }
};

// A request is "good" when it succeeded within both bounds (a bound <= 0 is not applied).
struct Slo {
  double ttft_ms = 0;
  double tpot_ms = 0;
};

bool MeetsSlo(const RequestRecord& r, const Slo& slo);

struct LoadReport {
  double duration_s = 0;
  int requests = 0;
  int succeeded = 0;
  std::map<std::string, int> errors;  // gRPC code name -> count
  int image_requests = 0;
  long long input_tokens = 0, output_tokens = 0;
  long long cached_input_tokens = 0;  // prompt tokens the workers' prefix caches served
  double request_throughput = 0;  // successful req/s
  double output_throughput = 0;   // output tok/s
  double total_token_throughput = 0;
  Slo slo;
  int good_requests = 0;
  double goodput = 0;  // good req/s
  LatencySummary ttft, tpot, itl, e2e;
};

// `duration_s`: wall time from the first send to the last answer.
LoadReport BuildReport(const std::vector<RequestRecord>& records, double duration_s,
                       const Slo& slo);

std::string FormatReport(const LoadReport& report);
nlohmann::json ReportToJson(const LoadReport& report);

}  // namespace glm4v::loadgen
