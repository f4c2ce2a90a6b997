#include "services/common/service_host.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "services/common/shutdown_signal.h"

namespace glm4v {

ServiceHost::ServiceHost(Options options) : options_(std::move(options)) {}

ServiceHost::~ServiceHost() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  if (exporter_ != nullptr) exporter_->Stop();
}

void ServiceHost::AddService(grpc::Service* service) { services_.push_back(service); }

absl::Status ServiceHost::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options_.bind_host, ":", options_.grpc_port);
  builder.AddListeningPort(address,
                           options_.credentials != nullptr ? options_.credentials
                                                           : grpc::InsecureServerCredentials(),
                           &grpc_port_);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(-1);
  // Answer keepalive pings from backend channels (see backend_channel.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  if (options_.max_connection_age > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(options_.max_connection_age)));
    // In-flight calls finish on the old connection, however long they take (a backlogged
    // vision service can take minutes; a grace that ends first fails them with UNAVAILABLE).
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, std::numeric_limits<int>::max());
  }
  for (grpc::Service* service : services_) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat(options_.component, ": cannot listen on ", address));
  }

  if (options_.metrics_port >= 0) {
    metrics::HttpExporter::Options exporter_options;
    exporter_options.host = options_.bind_host;
    exporter_options.port = options_.metrics_port;
    exporter_options.registry = options_.registry;
    // /readyz says what the gRPC health service says (kubelet's gRPC probes cannot speak TLS,
    // so TLS deployments probe this plaintext port instead).
    exporter_options.ready_check = [this]() {
      if (gate_.draining()) return absl::UnavailableError("draining");
      if (!serving_.load()) return absl::UnavailableError("not serving");
      return absl::OkStatus();
    };
    absl::StatusOr<std::unique_ptr<metrics::HttpExporter>> exporter =
        metrics::HttpExporter::Start(std::move(exporter_options));
    if (!exporter.ok()) return exporter.status();
    exporter_ = std::move(*exporter);
  }
  SetServing(true);
  LOG_INFO("serving").With("grpc_port", grpc_port_).With("metrics_port", metrics_port());
  return absl::OkStatus();
}

void ServiceHost::SetServing(bool serving) {
  serving_.store(serving);
  if (server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (const std::string& name : options_.health_services) health->SetServingStatus(name, serving);
}

void ServiceHost::ServeUntilShutdown(std::function<void(absl::Time)> after_requests_drained) {
  const int signo = ShutdownSignal::Wait();
  LOG_INFO("shutdown requested").With("signal", signo);
  Drain(std::move(after_requests_drained));
}

void ServiceHost::Drain(std::function<void(absl::Time)> after_requests_drained) {
  const absl::Time deadline = absl::Now() + options_.drain_grace;
  SetServing(false);
  gate_.StartDrain();
  LOG_INFO("draining")
      .With("inflight", gate_.inflight())
      .With("grace_seconds", absl::ToDoubleSeconds(options_.drain_grace));
  const bool idle = gate_.WaitIdle(deadline);
  if (!idle) {
    LOG_WARN("drain grace period over, cancelling remaining requests")
        .With("inflight", gate_.inflight());
  }
  if (after_requests_drained) after_requests_drained(deadline);
  if (server_ != nullptr) {
    // In-flight calls are done (or out of time): cancel stragglers almost at once.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
    server_->Wait();
  }
  if (exporter_ != nullptr) exporter_->Stop();
  LOG_INFO("stopped");
}

}  // namespace glm4v
