// How the project's command-line clients (tools/client, tools/loadgen) reach a gateway that
// requires TLS and an API key (docs/SERVICES.md "The public edge"), e.g. a gpu-* overlay:
//
//   --tls_ca=FILE           verify the gateway's certificate against this CA (turns TLS on)
//   --tls_cert/--tls_key    this client's own certificate (for a port that requires mTLS)
//   --tls_server_name=NAME  the name to verify when the target's host is another one (an IP, a
//                           port-forward to localhost)
//   --api_key_file=FILE     the key (first line), sent as "authorization: Bearer KEY" on every
//                           call; else $GLM4V_API_KEY. Never a flag value: argv is visible to
//                           every user of the machine (ps).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "services/common/tls_credentials.h"

namespace glm4v::tools {

struct GatewayConnection {
  TlsClientFiles tls;       // no CA: plaintext
  std::string server_name;  // empty: the target's host
  std::string api_key;      // empty: no authorization header

  // "Bearer KEY", or empty.
  std::string Authorization() const;
  // Adds the authorization header (if any) to a call.
  void Authorize(grpc::ClientContext* context) const;
};

// From the flags above and the environment; INVALID_ARGUMENT / NOT_FOUND naming the flag.
absl::StatusOr<GatewayConnection> GatewayConnectionFromFlags();

// The first non-empty line of `text`, trimmed; INVALID_ARGUMENT when there is none or it holds
// characters a header value cannot carry. `source` names where it came from, for the message.
absl::StatusOr<std::string> ParseApiKey(const std::string& text, const std::string& source);

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateGatewayChannel(
    const std::string& target, const GatewayConnection& connection,
    grpc::ChannelArguments args = grpc::ChannelArguments());

}  // namespace glm4v::tools
