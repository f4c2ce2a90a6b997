#include "services/common/backend_channel.h"

#include <limits>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace glm4v {
namespace {

std::shared_ptr<grpc::ChannelCredentials>& Credentials() {
  static auto* credentials =
      new std::shared_ptr<grpc::ChannelCredentials>(grpc::InsecureChannelCredentials());
  return *credentials;
}

}  // namespace

void SetBackendChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  Credentials() = std::move(credentials);
}

std::shared_ptr<grpc::Channel> CreateBackendChannel(const std::string& address,
                                                    bool round_robin) {
  grpc::ChannelArguments args;
  if (round_robin) args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // gRPC also uses this as the connect timeout (TCP + HTTP/2 handshake). Too small and a busy
  // but healthy backend looks dead; a stopped one is refused at once whatever the value.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  // Image features and prompts can be large; the backends bound sizes themselves.
  args.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  args.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  // Keepalive so a backend that vanished without closing its socket is detected mid-stream.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Each backend gets its own connection (not shared through the global subchannel pool), so a
  // restarted backend is reconnected independently of other users of the address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, Credentials(), args);
}

}  // namespace glm4v
