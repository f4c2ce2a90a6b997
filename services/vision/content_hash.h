// SHA-256 of encoded image bytes: the feature cache key and the image part of KV prefix reuse.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace glm4v {

// The 32 raw digest bytes.
std::string Sha256(absl::string_view bytes);
// Lowercase hex of the 32 bytes (for logs).
std::string Sha256Hex(absl::string_view bytes);

}  // namespace glm4v
