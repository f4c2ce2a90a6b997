#include "common/metrics/http_exporter.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace glm4v::metrics {

struct HttpExporter::Impl {
  httplib::Server server;
  std::thread thread;
  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
};

namespace {

void ServeProbe(const std::function<absl::Status()>& check, httplib::Response& res) {
  absl::Status s = check ? check() : absl::OkStatus();
  if (s.ok()) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  } else {
    res.status = 503;
    res.set_content(absl::StrCat(s.ToString(), "\n"), "text/plain; charset=utf-8");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpExporter>> HttpExporter::Start(Options options) {
  auto impl = std::make_unique<Impl>();
  Registry* registry = options.registry != nullptr ? options.registry : &DefaultRegistry();
  auto health = options.health_check;
  auto ready = options.ready_check ? options.ready_check : options.health_check;

  // httplib's default also sets SO_REUSEPORT, which would let a second process bind the same
  // port and silently split scrapes; keep only SO_REUSEADDR (fast restarts).
  impl->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl->server.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl->server.Get("/healthz", [health](const httplib::Request&, httplib::Response& res) {
    ServeProbe(health, res);
  });
  impl->server.Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    ServeProbe(ready, res);
  });

  int port = options.port;
  if (port == 0) {
    port = impl->server.bind_to_any_port(options.host);
    if (port < 0) {
      return absl::UnavailableError(
          absl::StrCat("metrics exporter: cannot bind ", options.host, " on any port"));
    }
  } else if (!impl->server.bind_to_port(options.host, port)) {
    return absl::UnavailableError(
        absl::StrCat("metrics exporter: cannot bind ", options.host, ":", port));
  }
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so wait for it: otherwise an early
  // Stop() would leave the thread listening forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!raw->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      raw->server.stop();
      raw->thread.join();
      return absl::DeadlineExceededError("metrics exporter: server did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<HttpExporter>(new HttpExporter(std::move(impl), port));
}

HttpExporter::HttpExporter(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpExporter::~HttpExporter() { Stop(); }

void HttpExporter::Stop() {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace glm4v::metrics
