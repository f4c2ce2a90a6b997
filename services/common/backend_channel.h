// Channels to internal backends (vision, workers).
//
// gRPC channels reconnect by themselves; these arguments make them notice a restarted backend
// within about a second, instead of the default exponential backoff of up to two minutes.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace glm4v {

// `address`: host:port, or any gRPC target (dns:///name:port, ipv4:a:p,b:p). With
// `round_robin` the calls spread over every address the target resolves to (a headless
// Service's pods) instead of gRPC's default pick_first (all calls to one).
std::shared_ptr<grpc::Channel> CreateBackendChannel(const std::string& address,
                                                    bool round_robin = false);

// The credentials every backend channel of this process uses (TLS / mTLS to the internal
// services, see tls_credentials.h); plaintext until set. Set once at startup, before channels
// are made.
void SetBackendChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials);

}  // namespace glm4v
