// Counter, Gauge and Histogram: the value holders behind every series.
//
// Updates are lock-free atomics so hot paths (per token, per request) never contend on a mutex;
// rendering reads them without stopping writers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::metrics {

namespace internal {
// std::atomic<double>::fetch_add is C++20; a CAS loop does the same here.
inline void AtomicAdd(std::atomic<double>& a, double delta) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + delta, std::memory_order_relaxed)) {
  }
}
}  // namespace internal

// Monotonically increasing; resets only with the process.
class Counter {
 public:
  static constexpr const char* kType = "counter";
  // Negative or NaN increments are ignored: a counter must never go down.
  void Increment(double delta = 1.0) {
    if (!(delta >= 0)) return;
    internal::AtomicAdd(value_, delta);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }
  // Appends "<name>{<labels>} <value>\n"; `labels` is the rendered inner label list or empty.
  void Render(absl::string_view name, absl::string_view labels, std::string* out) const;

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  static constexpr const char* kType = "gauge";
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double delta = 1.0) { internal::AtomicAdd(value_, delta); }
  void Decrement(double delta = 1.0) { internal::AtomicAdd(value_, -delta); }
  double Value() const { return value_.load(std::memory_order_relaxed); }
  void Render(absl::string_view name, absl::string_view labels, std::string* out) const;

 private:
  std::atomic<double> value_{0};
};

// Bucketed distribution. Buckets are the finite, strictly increasing upper bounds; +Inf is
// implicit.
class Histogram {
 public:
  static constexpr const char* kType = "histogram";
  // Checks the bounds (finite, strictly increasing; a trailing +Inf is dropped).
  static absl::StatusOr<std::vector<double>> ValidateBuckets(std::vector<double> bounds);
  // `bounds` must have passed ValidateBuckets.
  explicit Histogram(std::vector<double> bounds);

  // NaN observations are dropped (they would poison _sum for good).
  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    uint64_t count = 0;                // == cumulative.back()
    double sum = 0;
  };
  Snapshot Snap() const;
  void Render(absl::string_view name, absl::string_view labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), +Inf last
  std::atomic<double> sum_{0};
};

// Bucket layouts.
std::vector<double> LinearBuckets(double start, double width, int count);
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Seconds, 1 ms .. ~100 s: request and stage latencies.
std::vector<double> DefaultLatencyBuckets();

}  // namespace glm4v::metrics
