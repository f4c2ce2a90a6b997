// Serializes JSON for HTTP bodies without ever throwing.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace glm4v::openai {

// Compact JSON; invalid UTF-8 in strings becomes U+FFFD instead of an exception (the default
// dump() throws on it, and model text must never take a request handler down).
inline std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace glm4v::openai
