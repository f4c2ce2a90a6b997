#include "services/common/reloadable_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/common/file_identity.h"

namespace glm4v {
namespace {

struct BioCloser {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no details";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

absl::Status CheckValidity(X509* cert, const std::string& path) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", path, " is not valid yet (notBefore is in the future)"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return absl::FailedPreconditionError(absl::StrCat("certificate ", path, " has expired"));
  }
  return absl::OkStatus();
}

// Every certificate in a PEM file, leaf first.
absl::StatusOr<std::vector<X509*>> ReadCertificates(const std::string& path) {
  std::unique_ptr<BIO, BioCloser> bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot read certificate file ", path));
  }
  std::vector<X509*> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.push_back(cert);
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line"
  if (certs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate"));
  }
  return certs;
}

void FreeAll(std::vector<X509*>& certs) {
  for (X509* c : certs) X509_free(c);
  certs.clear();
}

}  // namespace

struct ReloadableCertificate::Pair {
  std::vector<X509*> chain;  // leaf first
  EVP_PKEY* key = nullptr;
  ~Pair() {
    FreeAll(chain);
    EVP_PKEY_free(key);
  }
};

ReloadableCertificate::~ReloadableCertificate() = default;

absl::StatusOr<std::shared_ptr<ReloadableCertificate>> ReloadableCertificate::Load(
    std::string cert_path, std::string key_path) {
  std::shared_ptr<ReloadableCertificate> store(
      new ReloadableCertificate(std::move(cert_path), std::move(key_path)));
  if (absl::Status s = store->Reload(); !s.ok()) return s;
  return store;
}

absl::Status ReloadableCertificate::Reload() {
  const std::string identity = FileIdentity({cert_path_, key_path_});
  auto pair = std::make_shared<Pair>();
  absl::Status status = [&]() -> absl::Status {
    auto chain = ReadCertificates(cert_path_);
    if (!chain.ok()) return chain.status();
    pair->chain = *std::move(chain);
    if (absl::Status s = CheckValidity(pair->chain[0], cert_path_); !s.ok()) return s;
    std::unique_ptr<BIO, BioCloser> bio(BIO_new_file(key_path_.c_str(), "r"));
    if (bio == nullptr) {
      return absl::NotFoundError(absl::StrCat("cannot read key file ", key_path_));
    }
    pair->key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (pair->key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(key_path_, " holds no PEM private key (", OpenSslError(), ")"));
    }
    if (X509_check_private_key(pair->chain[0], pair->key) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key_path_, " does not match certificate ", cert_path_));
    }
    return absl::OkStatus();
  }();
  absl::MutexLock lock(&mu_);
  identity_ = identity;  // a bad pair is reported once, not on every poll
  if (!status.ok()) return status;
  current_ = std::move(pair);
  return absl::OkStatus();
}

absl::StatusOr<bool> ReloadableCertificate::ReloadIfChanged() {
  {
    absl::MutexLock lock(&mu_);
    if (FileIdentity({cert_path_, key_path_}) == identity_) return false;
  }
  if (absl::Status s = Reload(); !s.ok()) return s;
  return true;
}

int ReloadableCertificate::OnHandshake(SSL* ssl, void* arg) {
  auto* self = static_cast<ReloadableCertificate*>(arg);
  std::shared_ptr<Pair> pair;
  {
    absl::MutexLock lock(&self->mu_);
    pair = self->current_;
  }
  if (pair == nullptr) return 0;
  if (SSL_use_certificate(ssl, pair->chain[0]) != 1) return 0;
  if (SSL_use_PrivateKey(ssl, pair->key) != 1) return 0;
  SSL_clear_chain_certs(ssl);
  for (size_t i = 1; i < pair->chain.size(); ++i) {
    if (SSL_add1_chain_cert(ssl, pair->chain[i]) != 1) return 0;
  }
  return 1;
}

absl::Status ReloadableCertificate::RequireClientCertificates(const std::string& ca_path) {
  auto ca = ReadCertificates(ca_path);  // names the file when it is missing or not PEM
  if (!ca.ok()) return ca.status();
  FreeAll(*ca);
  client_ca_path_ = ca_path;
  return absl::OkStatus();
}

void ReloadableCertificate::Install(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_cert_cb(ctx, &ReloadableCertificate::OnHandshake, this);
  if (!client_ca_path_.empty()) {
    SSL_CTX_load_verify_locations(ctx, client_ca_path_.c_str(), nullptr);
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(client_ca_path_.c_str()));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
}

int64_t ReloadableCertificate::not_after_unix() const {
  absl::MutexLock lock(&mu_);
  if (current_ == nullptr) return 0;
  struct tm tm {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(current_->chain[0]), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

absl::Status CheckTlsFiles(const std::string& cert_path, const std::string& key_path,
                           const std::string& ca_path) {
  if (!cert_path.empty() || !key_path.empty()) {
    auto pair = ReloadableCertificate::Load(cert_path, key_path);
    if (!pair.ok()) return pair.status();
  }
  if (!ca_path.empty()) {
    auto ca = ReadCertificates(ca_path);
    if (!ca.ok()) return ca.status();
    FreeAll(*ca);
  }
  return absl::OkStatus();
}

}  // namespace glm4v
