#include "tools/common/gateway_connection.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tools/common/target_address.h"

ABSL_FLAG(std::string, tls_ca, "", "CA certificate (PEM) that verifies the gateway; turns TLS on");
ABSL_FLAG(std::string, tls_cert, "", "this client's certificate (PEM), for a port requiring mTLS");
ABSL_FLAG(std::string, tls_key, "", "private key (PEM) of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the gateway's certificate must carry, when not the target's host");
ABSL_FLAG(std::string, api_key_file, "",
          "file whose first line is the API key (else $GLM4V_API_KEY; none: no key sent)");

namespace glm4v::tools {

std::string GatewayConnection::Authorization() const {
  return api_key.empty() ? "" : absl::StrCat("Bearer ", api_key);
}

void GatewayConnection::Authorize(grpc::ClientContext* context) const {
  if (!api_key.empty()) context->AddMetadata("authorization", Authorization());
}

absl::StatusOr<std::string> ParseApiKey(const std::string& text, const std::string& source) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    for (char c : line) {
      // A header value: visible ASCII; a space would split "Bearer KEY" differently.
      if (c <= 0x20 || c >= 0x7f) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": the API key holds a space or a non-printable character"));
      }
    }
    return std::string(line);
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": no API key in it"));
}

absl::StatusOr<GatewayConnection> GatewayConnectionFromFlags() {
  GatewayConnection c;
  c.tls = {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
           absl::GetFlag(FLAGS_tls_key)};
  if (!c.tls.enabled() && (!c.tls.cert.empty() || !c.tls.key.empty())) {
    return absl::InvalidArgumentError("--tls_cert/--tls_key need --tls_ca (the gateway's CA)");
  }
  c.server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (!c.server_name.empty() && !c.tls.enabled()) {
    return absl::InvalidArgumentError("--tls_server_name needs --tls_ca");
  }
  const std::string key_file = absl::GetFlag(FLAGS_api_key_file);
  if (!key_file.empty()) {
    std::ifstream in(key_file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("--api_key_file: cannot read ", key_file));
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::string> key = ParseApiKey(text.str(), "--api_key_file " + key_file);
    if (!key.ok()) return key.status();
    c.api_key = *std::move(key);
  } else if (const char* env = std::getenv("GLM4V_API_KEY"); env != nullptr && *env != '\0') {
    absl::StatusOr<std::string> key = ParseApiKey(env, "$GLM4V_API_KEY");
    if (!key.ok()) return key.status();
    c.api_key = *std::move(key);
  }
  return c;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateGatewayChannel(
    const std::string& target, const GatewayConnection& connection, grpc::ChannelArguments args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (connection.tls.enabled()) {
    // The file-watching provider re-reads the files on its own thread; a client that runs for
    // minutes has no use for it, but it is the same checked loading the services use.
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        ChannelCredentialsFromFiles(connection.tls);
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
    if (!connection.server_name.empty()) args.SetSslTargetNameOverride(connection.server_name);
  } else if (!connection.api_key.empty() && !IsLoopbackTarget(target)) {
    std::fprintf(stderr,
                 "warning: the API key goes to %s in clear text (no --tls_ca); anyone on the "
                 "path can read it\n",
                 target.c_str());
  }
  return grpc::CreateCustomChannel(target, credentials, args);
}

}  // namespace glm4v::tools
