// Channels to internal backends (vision, workers).
//
// gRPC channels reconnect by themselves; these arguments make them notice a restarted backend
// within about a second, instead of the default exponential backoff of up to two minutes.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"

namespace glm4v {

// `address`: host:port, or any gRPC target (dns:///name:port, ipv4:a:p,b:p). With
// `round_robin` the calls spread over every address the target resolves to (a headless
// Service's pods) instead of gRPC's default pick_first (all calls to one).
std::shared_ptr<grpc::Channel> CreateBackendChannel(const std::string& address,
                                                    bool round_robin = false);

}  // namespace glm4v
