// Images in chat requests arrive as RFC 2397 data URLs ("data:image/png;base64,...").
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace glm4v::openai {

struct DecodedImage {
  std::string bytes;
  // "image/png", "image/jpeg", or empty (let the vision service detect it from the bytes).
  std::string mime_type;
};

// Only base64 data URLs: the server never fetches http(s) URLs (it has no internet access, and
// fetching caller-chosen URLs from inside the cluster would be a request-forgery hole).
// INVALID_ARGUMENT with a readable reason otherwise. Whitespace inside the base64 text (line
// wrapping) and missing '=' padding are tolerated; anything else malformed is rejected.
absl::StatusOr<DecodedImage> DecodeImageUrl(absl::string_view url);

}  // namespace glm4v::openai
