// The set of metric families a process exports, rendered as Prometheus text format 0.0.4.
//
//   auto* requests = DefaultRegistry().AddCounterFamily(
//       "glm4v_requests_total", "Requests by outcome.", {"outcome"}).value();
//   Counter& ok = requests->WithLabels({"ok"});  // cache; then ok.Increment() per request
//
// Registering the same name again with the same type, help, labels (and buckets) returns the
// existing family, so independent components can declare a shared metric; any mismatch is
// ALREADY_EXISTS.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/family.h"
#include "common/metrics/metric_types.h"

namespace glm4v::metrics {

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  absl::StatusOr<Family<Counter>*> AddCounterFamily(const std::string& name,
                                                    const std::string& help,
                                                    const std::vector<std::string>& label_names);
  absl::StatusOr<Family<Gauge>*> AddGaugeFamily(const std::string& name, const std::string& help,
                                                const std::vector<std::string>& label_names);
  absl::StatusOr<Family<Histogram>*> AddHistogramFamily(const std::string& name,
                                                        const std::string& help,
                                                        const std::vector<std::string>& label_names,
                                                        const std::vector<double>& buckets);

  // Unlabeled shorthands (a family with no labels and its single child).
  absl::StatusOr<Counter*> AddCounter(const std::string& name, const std::string& help);
  absl::StatusOr<Gauge*> AddGauge(const std::string& name, const std::string& help);
  absl::StatusOr<Histogram*> AddHistogram(const std::string& name, const std::string& help,
                                          const std::vector<double>& buckets);

  // Families in registration order, each "# HELP", "# TYPE", then its samples.
  std::string Render() const;

 private:
  struct Entry {
    std::unique_ptr<FamilyBase> family;
    std::vector<double> buckets;  // histograms only
  };
  // Validates names and the clash rules; returns the existing family for an identical
  // re-registration, null when the caller should create one.
  absl::StatusOr<FamilyBase*> Check(const std::string& name, const std::string& help,
                                    const char* type, const std::vector<std::string>& label_names,
                                    const std::vector<double>* buckets)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename T>
  absl::StatusOr<Family<T>*> Add(const std::string& name, const std::string& help,
                                 const std::vector<std::string>& label_names,
                                 const std::vector<double>* buckets);

  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// The process-wide registry the HTTP exporter serves by default.
Registry& DefaultRegistry();

}  // namespace glm4v::metrics
