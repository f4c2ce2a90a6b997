#include "common/metrics/registry.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/metrics/text_format.h"

namespace glm4v::metrics {
namespace {

// Sample names a family writes: a histogram "x" also owns x_bucket, x_sum and x_count.
std::vector<std::string> SampleNames(const std::string& name, const char* type) {
  if (std::string(type) == Histogram::kType) {
    return {name, name + "_bucket", name + "_sum", name + "_count"};
  }
  return {name};
}

}  // namespace

absl::StatusOr<FamilyBase*> Registry::Check(const std::string& name, const std::string& help,
                                            const char* type,
                                            const std::vector<std::string>& label_names,
                                            const std::vector<double>* buckets) {
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid metric name \"", name, "\""));
  }
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    if (!IsValidLabelName(l)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": invalid label name \"", l, "\""));
    }
    if (buckets != nullptr && l == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": histograms reserve the label \"le\""));
    }
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric ", name, ": duplicate label name \"", l, "\""));
    }
  }
  const std::vector<std::string> mine = SampleNames(name, type);
  for (Entry& e : entries_) {
    FamilyBase& f = *e.family;
    if (f.name() == name) {
      if (std::string(f.type()) == type && f.help() == help && f.label_names() == label_names &&
          (buckets == nullptr || e.buckets == *buckets)) {
        return &f;
      }
      return absl::AlreadyExistsError(
          absl::StrCat("metric ", name, " is already registered as a ", f.type(), " with labels {",
                       absl::StrJoin(f.label_names(), ","), "} and different settings"));
    }
    for (const std::string& theirs : SampleNames(f.name(), f.type())) {
      for (const std::string& m : mine) {
        if (theirs == m) {
          return absl::AlreadyExistsError(absl::StrCat("metric ", name,
                                                       " would write samples named ", m, ", which ",
                                                       f.name(), " already writes"));
        }
      }
    }
  }
  return nullptr;
}

template <typename T>
absl::StatusOr<Family<T>*> Registry::Add(const std::string& name, const std::string& help,
                                         const std::vector<std::string>& label_names,
                                         const std::vector<double>* buckets) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<FamilyBase*> existing = Check(name, help, T::kType, label_names, buckets);
  if (!existing.ok()) return existing.status();
  if (*existing != nullptr) return static_cast<Family<T>*>(*existing);
  typename Family<T>::Factory factory;
  if constexpr (std::is_same_v<T, Histogram>) {
    std::vector<double> b = *buckets;
    factory = [b] { return std::make_unique<Histogram>(b); };
  } else {
    factory = [] { return std::make_unique<T>(); };
  }
  auto family = std::make_unique<Family<T>>(name, help, label_names, std::move(factory));
  Family<T>* raw = family.get();
  entries_.push_back(
      Entry{std::move(family), buckets != nullptr ? *buckets : std::vector<double>{}});
  return raw;
}

absl::StatusOr<Family<Counter>*> Registry::AddCounterFamily(
    const std::string& name, const std::string& help, const std::vector<std::string>& label_names) {
  return Add<Counter>(name, help, label_names, nullptr);
}

absl::StatusOr<Family<Gauge>*> Registry::AddGaugeFamily(
    const std::string& name, const std::string& help, const std::vector<std::string>& label_names) {
  return Add<Gauge>(name, help, label_names, nullptr);
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogramFamily(
    const std::string& name, const std::string& help, const std::vector<std::string>& label_names,
    const std::vector<double>& buckets) {
  absl::StatusOr<std::vector<double>> valid = Histogram::ValidateBuckets(buckets);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric ", name, ": ", valid.status().message()));
  }
  return Add<Histogram>(name, help, label_names, &*valid);
}

absl::StatusOr<Counter*> Registry::AddCounter(const std::string& name, const std::string& help) {
  absl::StatusOr<Family<Counter>*> f = AddCounterFamily(name, help, {});
  if (!f.ok()) return f.status();
  return &(*f)->WithLabels({});
}

absl::StatusOr<Gauge*> Registry::AddGauge(const std::string& name, const std::string& help) {
  absl::StatusOr<Family<Gauge>*> f = AddGaugeFamily(name, help, {});
  if (!f.ok()) return f.status();
  return &(*f)->WithLabels({});
}

absl::StatusOr<Histogram*> Registry::AddHistogram(const std::string& name, const std::string& help,
                                                  const std::vector<double>& buckets) {
  absl::StatusOr<Family<Histogram>*> f = AddHistogramFamily(name, help, {}, buckets);
  if (!f.ok()) return f.status();
  return &(*f)->WithLabels({});
}

std::string Registry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const Entry& e : entries_) {
    const FamilyBase& f = *e.family;
    absl::StrAppend(&out, "# HELP ", f.name(), " ", EscapeHelp(f.help()), "\n");
    absl::StrAppend(&out, "# TYPE ", f.name(), " ", f.type(), "\n");
    f.RenderSamples(&out);
  }
  return out;
}

Registry& DefaultRegistry() {
  static Registry* registry = new Registry();  // never destroyed: metrics may outlive main
  return *registry;
}

}  // namespace glm4v::metrics
