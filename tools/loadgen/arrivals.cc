#include "tools/loadgen/arrivals.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace glm4v::loadgen {

absl::StatusOr<ArrivalKind> ParseArrivalKind(absl::string_view name) {
  if (name == "poisson") return ArrivalKind::kPoisson;
  if (name == "constant") return ArrivalKind::kConstant;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown arrival process '", name, "' (poisson|constant)"));
}

ArrivalProcess::ArrivalProcess(ArrivalKind kind, double rate, uint64_t seed)
    : kind_(kind),
      rate_(rate),
      paced_(rate > 0 && std::isfinite(rate)),
      rng_(seed),
      exp_(paced_ ? rate : 1.0) {}

double ArrivalProcess::NextGapSeconds() {
  if (!paced_) return 0.0;
  if (kind_ == ArrivalKind::kConstant) return 1.0 / rate_;
  return exp_(rng_);
}

}  // namespace glm4v::loadgen
