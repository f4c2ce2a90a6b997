#include "services/common/tls_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "services/common/backend_channel.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of this service's gRPC port (and the gateway's HTTP port); "
          "with --tls_key. Re-read when the file changes.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle: callers of the gRPC port must present a certificate it signed (mTLS).");
ABSL_FLAG(std::string, backend_tls_ca, "",
          "PEM CA bundle verifying the services this process calls (TLS on the internal hops); "
          "their certificates must name the host dialled.");
ABSL_FLAG(std::string, backend_tls_cert, "",
          "This process's client certificate for the internal hops (mTLS), with "
          "--backend_tls_key.");
ABSL_FLAG(std::string, backend_tls_key, "", "PEM private key for --backend_tls_cert.");

namespace glm4v {

TlsServerFiles ServerTlsFilesFromFlags() {
  return {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
          absl::GetFlag(FLAGS_tls_ca)};
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags() {
  return ServerCredentialsFromFiles(ServerTlsFilesFromFlags());
}

absl::Status InstallBackendCredentialsFromFlags() {
  auto credentials = ChannelCredentialsFromFiles({absl::GetFlag(FLAGS_backend_tls_ca),
                                                  absl::GetFlag(FLAGS_backend_tls_cert),
                                                  absl::GetFlag(FLAGS_backend_tls_key)});
  if (!credentials.ok()) return credentials.status();
  SetBackendChannelCredentials(*std::move(credentials));
  return absl::OkStatus();
}

}  // namespace glm4v
