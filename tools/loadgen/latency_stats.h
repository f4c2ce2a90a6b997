// Order statistics for latency samples (milliseconds).
#pragma once

#include <cstddef>
#include <vector>

namespace glm4v::loadgen {

struct LatencySummary {
  size_t count = 0;
  double mean = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p99 = 0;
};

// q in [0, 1], linear interpolation between closest ranks (numpy's default), on a sorted,
// non-empty vector.
double PercentileOfSorted(const std::vector<double>& sorted, double q);

// All zeros for an empty input.
LatencySummary Summarize(std::vector<double> values);

}  // namespace glm4v::loadgen
