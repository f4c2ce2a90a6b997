// When the load generator sends the next request: Poisson arrivals (exponential gaps, the usual
// model of independent users), a fixed rate, or everything at once (rate = infinity, bounded
// only by --max_concurrency).
#pragma once

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::loadgen {

enum class ArrivalKind { kPoisson, kConstant };

absl::StatusOr<ArrivalKind> ParseArrivalKind(absl::string_view name);  // "poisson" | "constant"

class ArrivalProcess {
 public:
  // rate in requests per second; <= 0 or infinite means "no pacing" (every gap is 0).
  ArrivalProcess(ArrivalKind kind, double rate, uint64_t seed);

  // Seconds from the previous arrival to the next one. Deterministic for a given seed.
  double NextGapSeconds();

  bool paced() const { return paced_; }

 private:
  ArrivalKind kind_;
  double rate_;
  bool paced_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exp_;
};

}  // namespace glm4v::loadgen
