// The TLS flags every service shares (see tls_credentials.h):
//   --tls_cert, --tls_key, --tls_ca              this process's gRPC port
//   --backend_tls_ca, --backend_tls_cert, --backend_tls_key   its calls to other services
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "services/common/tls_credentials.h"

namespace glm4v {

TlsServerFiles ServerTlsFilesFromFlags();

// Credentials of the gRPC port from --tls_*; plaintext when unset.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags();

// Installs --backend_tls_* as the process's backend channel credentials (backend_channel.h).
absl::Status InstallBackendCredentialsFromFlags();

}  // namespace glm4v
