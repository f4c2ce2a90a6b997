#include "common/metrics/metric_types.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/text_format.h"

namespace glm4v::metrics {
namespace {

void AppendSample(absl::string_view name, absl::string_view suffix, absl::string_view labels,
                  double value, std::string* out) {
  absl::StrAppend(out, name, suffix);
  if (!labels.empty()) absl::StrAppend(out, "{", labels, "}");
  absl::StrAppend(out, " ", FormatValue(value), "\n");
}

}  // namespace

void Counter::Render(absl::string_view name, absl::string_view labels, std::string* out) const {
  AppendSample(name, "", labels, Value(), out);
}

void Gauge::Render(absl::string_view name, absl::string_view labels, std::string* out) const {
  AppendSample(name, "", labels, Value(), out);
}

absl::StatusOr<std::vector<double>> Histogram::ValidateBuckets(std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram bucket bound ", FormatValue(bounds[i]), " is not finite"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram bucket bounds must increase strictly: ", FormatValue(bounds[i - 1]), " then ",
          FormatValue(bounds[i])));
    }
  }
  return bounds;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // First bound >= value ("le" is inclusive); past the end means the +Inf bucket.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  internal::AtomicAdd(sum_, value);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  // The count is derived from the buckets so +Inf == _count holds even mid-update.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void Histogram::Render(absl::string_view name, absl::string_view labels, std::string* out) const {
  const Snapshot s = Snap();
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    const std::string le = i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf";
    AppendSample(name, "_bucket", absl::StrCat(labels, sep, "le=\"", le, "\""),
                 static_cast<double>(s.cumulative[i]), out);
  }
  AppendSample(name, "_sum", labels, s.sum, out);
  AppendSample(name, "_count", labels, static_cast<double>(s.count), out);
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> b;
  for (int i = 0; i < count; ++i) b.push_back(start + i * width);
  return b;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
}

}  // namespace glm4v::metrics
