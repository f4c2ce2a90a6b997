// The clients' connection to a locked-down gateway: the key from a file or the environment,
// checked like a header value; TLS verified against the CA (and a server-name override), a
// client certificate for mTLS, and the bearer header arriving on the server.
#include "tools/common/gateway_connection.h"

#include <cstdlib>
#include <fstream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "protos/glm4v/v1/glm4v.grpc.pb.h"
#include "services/common/service_host.h"
#include "tests/tls/test_certificates.h"

ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_server_name);
ABSL_DECLARE_FLAG(std::string, api_key_file);

namespace glm4v::tools {
namespace {

// Answers GetModelInfo with the caller's authorization header as the model name.
class EchoAuthorization final : public v1::Glm4vService::Service {
  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest*,
                            v1::ModelInfo* info) override {
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no key");
    }
    info->set_model(std::string(it->second.data(), it->second.size()));
    return grpc::Status::OK;
  }
};

class GatewayConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* flag : {&FLAGS_tls_ca, &FLAGS_tls_cert, &FLAGS_tls_key, &FLAGS_tls_server_name,
                       &FLAGS_api_key_file}) {
      absl::SetFlag(flag, "");
    }
    unsetenv("GLM4V_API_KEY");
    const char* tmp = std::getenv("TEST_TMPDIR");
    tmp_ = tmp != nullptr ? tmp : "/tmp";
  }

  std::string WriteKeyFile(const std::string& text) {
    const std::string path = tmp_ + "/key";
    std::ofstream(path) << text;
    return path;
  }

  // A loopback server of EchoAuthorization with these files; nullptr on failure.
  std::unique_ptr<ServiceHost> StartServer(const TlsServerFiles& files) {
    auto credentials = ServerCredentialsFromFiles(files);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    if (!credentials.ok()) return nullptr;
    ServiceHost::Options options;
    options.component = "connection-test";
    options.bind_host = "127.0.0.1";
    options.metrics_port = -1;
    options.drain_grace = absl::Seconds(1);
    options.credentials = *credentials;
    auto host = std::make_unique<ServiceHost>(options);
    host->AddService(&service_);
    EXPECT_TRUE(host->Start().ok());
    return host;
  }

  // The model name the server answered (= the authorization it saw), or the error.
  absl::StatusOr<std::string> Call(const ServiceHost& host, const GatewayConnection& connection) {
    auto channel =
        CreateGatewayChannel(absl::StrCat("127.0.0.1:", host.grpc_port()), connection);
    if (!channel.ok()) return channel.status();
    auto stub = v1::Glm4vService::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
    connection.Authorize(&context);
    v1::ModelInfo info;
    grpc::Status status = stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return info.model();
  }

  std::string tmp_;
  EchoAuthorization service_;
};

TEST_F(GatewayConnectionTest, ApiKeyIsTheFirstNonEmptyLineTrimmed) {
  EXPECT_EQ(*ParseApiKey("\n  sk-abc-123  \nsecond\n", "f"), "sk-abc-123");
  EXPECT_EQ(*ParseApiKey("sk-abc-123\r\n", "f"), "sk-abc-123");
  EXPECT_EQ(ParseApiKey("\n \n", "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseApiKey("sk abc", "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseApiKey("sk-\x01", "f").status().code(), absl::StatusCode::kInvalidArgument);
  // The message names the source but never repeats the key.
  auto bad = ParseApiKey("secret value", "--api_key_file /k");
  EXPECT_NE(bad.status().message().find("--api_key_file /k"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("secret"), std::string::npos);
}

TEST_F(GatewayConnectionTest, KeyFromTheFileOrElseTheEnvironment) {
  auto none = GatewayConnectionFromFlags();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->Authorization(), "");
  setenv("GLM4V_API_KEY", "sk-from-env", 1);
  EXPECT_EQ(GatewayConnectionFromFlags()->Authorization(), "Bearer sk-from-env");
  absl::SetFlag(&FLAGS_api_key_file, WriteKeyFile("sk-from-file\n"));
  EXPECT_EQ(GatewayConnectionFromFlags()->Authorization(), "Bearer sk-from-file");
  absl::SetFlag(&FLAGS_api_key_file, tmp_ + "/no-such-file");
  EXPECT_EQ(GatewayConnectionFromFlags().status().code(), absl::StatusCode::kNotFound);
  absl::SetFlag(&FLAGS_api_key_file, "");
  setenv("GLM4V_API_KEY", "two words", 1);
  EXPECT_EQ(GatewayConnectionFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GatewayConnectionTest, TlsFlagsThatCannotWorkAlone) {
  absl::SetFlag(&FLAGS_tls_cert, "/c.pem");
  absl::SetFlag(&FLAGS_tls_key, "/c.key");
  EXPECT_EQ(GatewayConnectionFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_tls_cert, "");
  absl::SetFlag(&FLAGS_tls_key, "");
  absl::SetFlag(&FLAGS_tls_server_name, "gateway.example");
  EXPECT_EQ(GatewayConnectionFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_tls_server_name, "");
  absl::SetFlag(&FLAGS_tls_ca, tmp_ + "/no-such-ca.pem");
  auto connection = GatewayConnectionFromFlags();
  ASSERT_TRUE(connection.ok());  // the file is read when the channel is made
  EXPECT_FALSE(CreateGatewayChannel("127.0.0.1:1", *connection).ok());
}

TEST_F(GatewayConnectionTest, AKeyInClearTextToAnotherMachineIsWarnedAbout) {
  GatewayConnection connection;
  connection.api_key = "sk-plain";
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(CreateGatewayChannel("127.0.0.1:50051", connection).ok());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(CreateGatewayChannel("10.1.2.3:50051", connection).ok());
  const std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("in clear text"), std::string::npos) << warning;
  EXPECT_EQ(warning.find("sk-plain"), std::string::npos) << warning;
}

TEST_F(GatewayConnectionTest, PlaintextWithAKey) {
  auto server = StartServer({});
  ASSERT_NE(server, nullptr);
  GatewayConnection connection;
  connection.api_key = "sk-plain";
  EXPECT_EQ(*Call(*server, connection), "Bearer sk-plain");
  EXPECT_EQ(Call(*server, GatewayConnection()).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(GatewayConnectionTest, TlsVerifiedAgainstTheCaAndTheServerName) {
  auto certs = testing::MakeTestCertificates("connection");
  ASSERT_TRUE(certs.ok()) << certs.status();
  const std::string dir = *certs + "/";
  auto server = StartServer({dir + "server.pem", dir + "server.key", ""});
  ASSERT_NE(server, nullptr);
  GatewayConnection connection;
  connection.api_key = "sk-over-tls";
  connection.tls.ca = dir + "ca.pem";
  EXPECT_EQ(*Call(*server, connection), "Bearer sk-over-tls");
  connection.server_name = "localhost";  // also in the certificate
  EXPECT_TRUE(Call(*server, connection).ok());
  connection.server_name = "gateway.example";  // not in it
  EXPECT_FALSE(Call(*server, connection).ok());
  connection.server_name = "";
  connection.tls.ca = dir + "other_ca.pem";  // a CA that did not sign it
  EXPECT_FALSE(Call(*server, connection).ok());
  EXPECT_FALSE(Call(*server, GatewayConnection()).ok());  // plaintext to a TLS port
}

TEST_F(GatewayConnectionTest, ClientCertificateForAPortThatRequiresOne) {
  auto certs = testing::MakeTestCertificates("connection-mtls");
  ASSERT_TRUE(certs.ok()) << certs.status();
  const std::string dir = *certs + "/";
  auto server = StartServer({dir + "server.pem", dir + "server.key", dir + "ca.pem"});
  ASSERT_NE(server, nullptr);
  GatewayConnection connection;
  connection.api_key = "sk-mtls";
  connection.tls.ca = dir + "ca.pem";
  EXPECT_FALSE(Call(*server, connection).ok());  // no client certificate
  connection.tls.cert = dir + "client.pem";
  connection.tls.key = dir + "client.key";
  EXPECT_EQ(*Call(*server, connection), "Bearer sk-mtls");
}

}  // namespace
}  // namespace glm4v::tools
