// TLS for the gRPC ports and the internal hops (gateway -> vision / workers), from PEM files
// that are watched: a renewed certificate (cert-manager, a rotated Kubernetes Secret) is picked
// up within `refresh` without a restart.
//
//   server:  --tls_cert, --tls_key [, --tls_ca: client certificates required and verified]
//   client:  --backend_tls_ca (verifies the backends) [, --backend_tls_cert / _key: mTLS]
//
// The files are checked at startup (readable PEM, key matching the certificate, within its
// validity period), so mistakes fail there with a message naming the file.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace glm4v {

struct TlsServerFiles {
  std::string cert;
  std::string key;
  std::string client_ca;  // set: clients must present a certificate signed by it (mTLS)
  bool enabled() const { return !cert.empty() || !key.empty(); }
};

struct TlsClientFiles {
  std::string ca;  // verifies the servers (required for TLS)
  std::string cert;
  std::string key;  // with cert: the client's own identity (mTLS)
  bool enabled() const { return !ca.empty(); }
};

// Insecure credentials when `files` is empty; INVALID_ARGUMENT for half-given pairs.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFiles(
    const TlsServerFiles& files, absl::Duration refresh = absl::Seconds(10));
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFiles(
    const TlsClientFiles& files, absl::Duration refresh = absl::Seconds(10));

}  // namespace glm4v
