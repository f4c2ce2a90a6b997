// Calls the gateway's own HTTP front makes to its gRPC service over the in-process channel.
// The front checks the caller's key once per HTTP request and holds that key's concurrency slot
// for the whole request, however many choices (n) it fans out into; its gRPC calls then carry
// this process's random token and the key's id instead of the key, and the service counts them
// under that id without taking a slot again. The token never leaves the process: outside
// callers cannot present it.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace glm4v::auth {

inline constexpr char kInternalTokenMetadata[] = "x-glm4v-internal-token";
inline constexpr char kInternalKeyIdMetadata[] = "x-glm4v-key-id";

// 32 random bytes (OpenSSL's generator) as 64 hex digits.
std::string NewInternalToken();

// Compares in time that depends only on the lengths (a token is not guessed byte by byte).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace glm4v::auth
