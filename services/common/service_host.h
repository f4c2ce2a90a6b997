// What every serving process shares: a gRPC server with health checking, the metrics/health
// HTTP exporter, and graceful drain on SIGTERM.
//
//   ShutdownSignal::Install();            // first thing in main()
//   ServiceHost host(options);
//   host.AddService(&my_service);         // handlers enter host.gate() per RPC
//   RETURN_IF_ERROR(host.Start());
//   host.ServeUntilShutdown();            // blocks until SIGTERM/SIGINT, then drains
//
// Drain: health flips to NOT_SERVING (load balancers and the gateway stop routing here), the
// gate refuses new RPCs with UNAVAILABLE, in-flight RPCs get up to drain_grace to finish, then
// the server shuts down (cancelling whatever is left) and the exporter stops.
#pragma once

#include <atomic>

#include "grpcpp/security/server_credentials.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics/http_exporter.h"
#include "common/metrics/registry.h"
#include "grpcpp/server.h"
#include "services/common/drain_gate.h"

namespace glm4v {

class ServiceHost {
 public:
  struct Options {
    std::string component;  // "gateway", "vision", "worker": logs and messages
    // gRPC service names reported by the health service besides the overall "".
    std::vector<std::string> health_services;
    std::string bind_host = "0.0.0.0";
    int grpc_port = 0;     // 0: any free port (see grpc_port())
    int metrics_port = 0;  // 0: any free port; < 0: no exporter
    absl::Duration drain_grace = absl::Seconds(30);
    int max_receive_message_bytes = 64 << 20;
    // > 0: connections are closed (gracefully) after this long, so round-robin clients resolve
    // the Service again and reach pods added since (the vision service behind its HPA).
    absl::Duration max_connection_age = absl::ZeroDuration();
    metrics::Registry* registry = nullptr;  // null: the default registry
    // The gRPC port's credentials (tls_credentials.h); null: plaintext.
    std::shared_ptr<grpc::ServerCredentials> credentials;
  };

  explicit ServiceHost(Options options);
  ~ServiceHost();

  // Before Start(). Not owned.
  void AddService(grpc::Service* service);

  // Binds the ports and marks every health service SERVING.
  absl::Status Start();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return exporter_ ? exporter_->port() : -1; }
  DrainGate& gate() { return gate_; }
  grpc::Server* server() { return server_.get(); }

  // Flips every health service (e.g. NOT_SERVING while a backend is unhealthy).
  void SetServing(bool serving);

  // Blocks until SIGTERM/SIGINT (see ShutdownSignal), then drains. `after_requests_drained`
  // runs once in-flight RPCs finished or the grace period ran out, before the server stops
  // (e.g. to shut an engine down); it gets the drain deadline.
  void ServeUntilShutdown(std::function<void(absl::Time deadline)> after_requests_drained = {});

  // The drain part alone (for callers that wait for shutdown themselves).
  void Drain(std::function<void(absl::Time deadline)> after_requests_drained = {});

 private:
  Options options_;
  std::vector<grpc::Service*> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<metrics::HttpExporter> exporter_;
  DrainGate gate_;
  int grpc_port_ = 0;
  std::atomic<bool> serving_{false};  // last SetServing (also /readyz)
};

}  // namespace glm4v
