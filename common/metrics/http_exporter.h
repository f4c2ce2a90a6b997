// A small HTTP server for Prometheus scrapes and Kubernetes probes:
//   GET /metrics  registry text, Content-Type "text/plain; version=0.0.4; charset=utf-8"
//   GET /healthz  liveness:  200 "ok" or 503 with the reason
//   GET /readyz   readiness: same, from its own check (defaults to the liveness check)
// It runs on its own threads (cpp-httplib) so a busy serving loop never delays a scrape.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics/registry.h"

namespace glm4v::metrics {

class HttpExporter {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 0;                  // 0: the kernel picks a free port; see port()
    Registry* registry = nullptr;  // null: DefaultRegistry(); must outlive the exporter
    std::function<absl::Status()> health_check;  // null: always healthy
    std::function<absl::Status()> ready_check;   // null: same as health_check
  };

  // Binds and starts serving before returning (so port() is usable and a scrape succeeds).
  static absl::StatusOr<std::unique_ptr<HttpExporter>> Start(Options options);
  ~HttpExporter();  // Stop()s

  int port() const { return port_; }
  // Stops accepting, finishes in-flight requests and joins; idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpExporter(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace glm4v::metrics
