// A TLS server certificate (PEM chain) and its private key that can be replaced while the
// server runs: every handshake takes the pair current at that moment, and ReloadIfChanged()
// (polled by the process's ReloadWatcher, or on SIGHUP) swaps in new files. Files that do not
// parse, a key that does not match the certificate, or a certificate outside its validity
// period are refused with an error naming the file, and the previous pair stays in use.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace glm4v {

class ReloadableCertificate {
 public:
  static absl::StatusOr<std::shared_ptr<ReloadableCertificate>> Load(std::string cert_path,
                                                                     std::string key_path);
  ~ReloadableCertificate();

  // True when the files changed and the new pair was taken.
  absl::StatusOr<bool> ReloadIfChanged();

  // From now on Install() also requires a client certificate signed by a CA in `ca_path`
  // (mutual TLS, the HTTPS twin of a gRPC port's --tls_ca); the file is read here, once.
  absl::Status RequireClientCertificates(const std::string& ca_path);

  // Makes every handshake on `ctx` use the current pair (and check the client's certificate
  // when required).
  void Install(SSL_CTX* ctx);

  // notAfter of the current certificate (Unix seconds), for logs and metrics.
  int64_t not_after_unix() const;

 private:
  struct Pair;
  ReloadableCertificate(std::string cert_path, std::string key_path)
      : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}
  absl::Status Reload();
  static int OnHandshake(SSL* ssl, void* self);

  const std::string cert_path_;
  const std::string key_path_;
  std::string client_ca_path_;  // set before the server starts
  mutable absl::Mutex mu_;
  std::shared_ptr<Pair> current_ ABSL_GUARDED_BY(mu_);
  std::string identity_ ABSL_GUARDED_BY(mu_);  // FileIdentity of the pair last read
};

// Checks the PEM files a gRPC TLS port will watch, so that a wrong path, a mismatched key or an
// expired certificate fails at startup with a clear message instead of at the first handshake.
// Empty cert and key paths skip the pair; `ca_path` (may be empty) must hold at least one
// certificate.
absl::Status CheckTlsFiles(const std::string& cert_path, const std::string& key_path,
                           const std::string& ca_path);

}  // namespace glm4v
