// TLS and mTLS of the gRPC ports and the HTTPS port's reloadable certificate, with
// certificates the test makes (tests/tls/make_test_certs.sh): a wrong CA, a client without or
// with a foreign certificate, an expired certificate, a mismatched key, and a certificate
// replaced while serving.
#include "services/common/tls_credentials.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "protos/glm4v/internal/vision.grpc.pb.h"
#include "services/common/health_probe.h"
#include "services/common/reloadable_certificate.h"
#include "services/common/service_host.h"
#include "tests/tls/test_certificates.h"

namespace glm4v {
namespace {

glm4v::internal::VisionEncoder::Service placeholder_service;

// An HTTPS server on loopback answering "/" whose handshakes go through `cert`.
class HttpsServer {
 public:
  explicit HttpsServer(ReloadableCertificate* cert)
      : server_([cert](SSL_CTX& ctx) {
          cert->Install(&ctx);
          return true;
        }) {
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HttpsServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::SSLServer server_;
  std::thread thread_;
  int port_ = 0;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::MakeTestCertificates(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir + "/";
  }
  std::string F(const std::string& name) const { return dir_ + name; }

  // A ServiceHost on loopback with these server files.
  std::unique_ptr<ServiceHost> StartHost(const TlsServerFiles& files) {
    auto credentials = ServerCredentialsFromFiles(files, absl::Seconds(1));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return nullptr;
    ServiceHost::Options options;
    options.component = "tls-test";
    options.bind_host = "127.0.0.1";
    options.metrics_port = -1;
    options.drain_grace = absl::Seconds(1);
    options.credentials = *credentials;
    auto host = std::make_unique<ServiceHost>(options);
    host->AddService(&placeholder_service);
    EXPECT_TRUE(host->Start().ok());
    return host;
  }

  // Whether a health call with these client files succeeds.
  bool Reaches(const ServiceHost& host, const TlsClientFiles& files, const char* host_name =
                                                                          "127.0.0.1") {
    auto credentials = ChannelCredentialsFromFiles(files, absl::Seconds(1));
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return false;
    auto channel = grpc::CreateChannel(absl::StrCat(host_name, ":", host.grpc_port()), *credentials);
    auto state = ProbeHealth(channel, "", absl::Seconds(3));
    return state.ok() && *state == ServingState::kServing;
  }

  std::string dir_;
};

TEST_F(TlsTest, TlsServesClientsThatTrustItsCa) {
  auto host = StartHost({F("server.pem"), F("server.key"), ""});
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(Reaches(*host, {F("ca.pem"), "", ""}));
  EXPECT_TRUE(Reaches(*host, {F("ca.pem"), "", ""}, "localhost"));
  EXPECT_FALSE(Reaches(*host, {F("other_ca.pem"), "", ""}));  // wrong CA
  EXPECT_FALSE(Reaches(*host, {}));                            // plaintext client
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  auto host = StartHost({F("server.pem"), F("server.key"), F("ca.pem")});
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(Reaches(*host, {F("ca.pem"), F("client.pem"), F("client.key")}));
  EXPECT_FALSE(Reaches(*host, {F("ca.pem"), "", ""}));  // no client certificate
  EXPECT_FALSE(Reaches(*host, {F("ca.pem"), F("other_client.pem"), F("other_client.key")}));
}

TEST_F(TlsTest, BadFilesFailAtStartupNamingTheFile) {
  auto expired = ServerCredentialsFromFiles({F("expired_server.pem"), F("expired_server.key"), ""});
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(expired.status().message().find("expired_server.pem has expired"), std::string::npos)
      << expired.status();
  auto mismatched = ServerCredentialsFromFiles({F("server.pem"), F("client.key"), ""});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("does not match"), std::string::npos);
  EXPECT_EQ(ServerCredentialsFromFiles({F("missing.pem"), F("server.key"), ""}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ServerCredentialsFromFiles({F("server.key"), F("server.key"), ""}).status().code(),
            absl::StatusCode::kInvalidArgument);  // a key is no certificate
  EXPECT_FALSE(ServerCredentialsFromFiles({F("server.pem"), "", ""}).ok());
  EXPECT_FALSE(ServerCredentialsFromFiles({"", "", F("ca.pem")}).ok());
  EXPECT_FALSE(ChannelCredentialsFromFiles({"", F("client.pem"), F("client.key")}).ok());
  EXPECT_FALSE(ChannelCredentialsFromFiles({F("ca.pem"), F("client.pem"), ""}).ok());
  EXPECT_FALSE(ChannelCredentialsFromFiles({F("server.key"), "", ""}).ok());
}

TEST_F(TlsTest, GrpcServerPicksUpAReplacedCertificate) {
  // Served from copies that are then replaced, as a rotated Secret is.
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("server.pem"), " ", F("live.pem"), " && cp ",
                                     F("server.key"), " ", F("live.key")).c_str()), 0);
  auto host = StartHost({F("live.pem"), F("live.key"), ""});
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(Reaches(*host, {F("ca.pem"), "", ""}));
  EXPECT_FALSE(Reaches(*host, {F("other_ca.pem"), "", ""}));
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("other_server.pem"), " ", F("live.pem"), " && cp ",
                                     F("other_server.key"), " ", F("live.key")).c_str()), 0);
  bool switched = false;
  for (int i = 0; i < 50 && !switched; ++i) {
    absl::SleepFor(absl::Milliseconds(200));
    switched = Reaches(*host, {F("other_ca.pem"), "", ""});
  }
  EXPECT_TRUE(switched) << "the new certificate was not served within 10 s";
}

TEST_F(TlsTest, HttpsServerReloadsItsCertificate) {
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("server.pem"), " ", F("live.pem"), " && cp ",
                                     F("server.key"), " ", F("live.key")).c_str()), 0);
  auto cert = ReloadableCertificate::Load(F("live.pem"), F("live.key"));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_GT((*cert)->not_after_unix(), absl::ToUnixSeconds(absl::Now()));
  HttpsServer server(cert->get());
  const int port = server.port();
  ASSERT_GT(port, 0);
  auto get = [&](const std::string& ca) {
    httplib::SSLClient client("127.0.0.1", port);
    client.set_ca_cert_path(ca.c_str());
    client.enable_server_certificate_verification(true);
    auto r = client.Get("/");
    return r && r->status == 200;
  };
  EXPECT_TRUE(get(F("ca.pem")));
  EXPECT_FALSE(get(F("other_ca.pem")));
  EXPECT_EQ((*cert)->ReloadIfChanged().value(), false);

  // A broken replacement is refused and the old pair keeps serving.
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("client.key"), " ", F("live.key")).c_str()), 0);
  EXPECT_FALSE((*cert)->ReloadIfChanged().ok());
  EXPECT_TRUE(get(F("ca.pem")));
  // The new pair: new handshakes present it.
  ASSERT_EQ(std::system(absl::StrCat("cp ", F("other_server.pem"), " ", F("live.pem"), " && cp ",
                                     F("other_server.key"), " ", F("live.key")).c_str()), 0);
  EXPECT_EQ((*cert)->ReloadIfChanged().value(), true);
  EXPECT_TRUE(get(F("other_ca.pem")));
  EXPECT_FALSE(get(F("ca.pem")));
}

// The gateway's --tls_ca also makes its HTTPS port require a client certificate from the CA.
TEST_F(TlsTest, HttpsServerRequiresClientCertificatesWhenGivenACa) {
  auto cert = ReloadableCertificate::Load(F("server.pem"), F("server.key"));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ((*cert)->RequireClientCertificates(F("missing_ca.pem")).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE((*cert)->RequireClientCertificates(F("ca.pem")).ok());
  HttpsServer server(cert->get());
  const int port = server.port();
  ASSERT_GT(port, 0);
  auto get = [&](const std::string& client_cert, const std::string& client_key) {
    std::unique_ptr<httplib::SSLClient> client =
        client_cert.empty()
            ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
            : std::make_unique<httplib::SSLClient>("127.0.0.1", port, client_cert, client_key);
    client->set_ca_cert_path(F("ca.pem").c_str());
    client->enable_server_certificate_verification(true);
    auto r = client->Get("/");
    return r && r->status == 200;
  };
  EXPECT_FALSE(get("", ""));                                            // no certificate
  EXPECT_FALSE(get(F("other_client.pem"), F("other_client.key")));      // another CA's
  EXPECT_TRUE(get(F("client.pem"), F("client.key")));
}

}  // namespace
}  // namespace glm4v
