// Request ids for logs and responses when the caller did not provide one.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace glm4v {

// 16 random lowercase hex characters.
std::string NewRequestId();

// `requested` if it is a usable id (1..128 printable ASCII, no spaces), else a new one.
std::string RequestIdOrNew(absl::string_view requested);

}  // namespace glm4v
