// A metric family: one name, help text and label names; one child series per label-value tuple.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/text_format.h"

namespace glm4v::metrics {

// Type-erased view the Registry renders.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  virtual const std::string& name() const = 0;
  virtual const std::string& help() const = 0;
  virtual const char* type() const = 0;
  virtual const std::vector<std::string>& label_names() const = 0;
  // Appends the samples of every child (no HELP/TYPE lines).
  virtual void RenderSamples(std::string* out) const = 0;
};

template <typename T>
class Family final : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;

  // Registry::Add*Family validates the arguments before constructing one.
  Family(std::string name, std::string help, std::vector<std::string> label_names, Factory factory)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        factory_(std::move(factory)) {}

  const std::string& name() const override { return name_; }
  const std::string& help() const override { return help_; }
  const char* type() const override { return T::kType; }
  const std::vector<std::string>& label_names() const override { return label_names_; }

  // The child for these values (one per label name, in order), created on first use. The
  // reference stays valid as long as the registry: cache it on hot paths instead of calling
  // this per event. A wrong number of values is a programming error and aborts.
  T& WithLabels(const std::vector<std::string>& values) {
    if (values.size() != label_names_.size()) {
      std::fprintf(stderr, "metrics: %s has labels {%s} but got %zu values {%s}\n", name_.c_str(),
                   absl::StrJoin(label_names_, ",").c_str(), values.size(),
                   absl::StrJoin(values, ",").c_str());
      std::abort();
    }
    absl::MutexLock lock(&mu_);
    std::unique_ptr<T>& child = children_[values];
    if (child == nullptr) child = factory_();
    return *child;
  }

  // Drops the child for these values (a backend that left the pool): it disappears from the
  // exposition. References to it from WithLabels must not be used afterwards.
  void Remove(const std::vector<std::string>& values) {
    absl::MutexLock lock(&mu_);
    children_.erase(values);
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return children_.size();
  }

  void RenderSamples(std::string* out) const override {
    absl::MutexLock lock(&mu_);
    for (const auto& [values, child] : children_) {
      std::string labels;
      for (size_t i = 0; i < values.size(); ++i) {
        absl::StrAppend(&labels, i ? "," : "", label_names_[i], "=\"", EscapeLabelValue(values[i]),
                        "\"");
      }
      child->Render(name_, labels, out);
    }
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const Factory factory_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace glm4v::metrics
