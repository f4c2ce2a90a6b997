// Channels to internal backends (vision, workers).
//
// gRPC channels reconnect by themselves; these arguments make them notice a restarted backend
// within about a second, instead of the default exponential backoff of up to two minutes.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/channel.h"

namespace glm4v {

std::shared_ptr<grpc::Channel> CreateBackendChannel(const std::string& address);

}  // namespace glm4v
