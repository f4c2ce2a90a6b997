// Fetches the http(s) image URLs of OpenAI requests, under limits: size, time, redirects,
// content type, and no private, loopback, link-local or otherwise internal addresses unless
// allowed (server-side request forgery: a caller must not make the gateway read its pod's
// neighbours or the cloud metadata service).
//
// Every address a host name resolves to is checked, and the connection goes to a checked
// address (pinned), so a DNS answer that changes between check and connect cannot slip
// through; each redirect hop is checked the same way.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace glm4v::openai {

struct FetchedImage {
  std::string bytes;
  std::string mime_type;  // image/png or image/jpeg, from the bytes
};

class ImageFetcher {
 public:
  struct Options {
    int64_t max_bytes = 16 << 20;
    absl::Duration timeout = absl::Seconds(10);  // whole fetch, redirects included
    int max_redirects = 3;
    bool allow_private_addresses = false;
    std::string ca_file;  // the CA bundle https is verified against (empty: the system's)
  };

  explicit ImageFetcher(Options options) : options_(std::move(options)) {}

  // INVALID_ARGUMENT for what the caller can fix (bad URL, refused address, HTTP error,
  // wrong type, too large, too many redirects); DEADLINE_EXCEEDED when it took too long;
  // UNAVAILABLE when the host could not be reached.
  absl::StatusOr<FetchedImage> Fetch(const std::string& url) const;

 private:
  Options options_;
};

// Whether `ip` (numeric IPv4 or IPv6) is a public unicast address: not loopback, private
// (RFC 1918, unique-local), link-local, shared (100.64/10), unspecified, multicast,
// broadcast, documentation or reserved, nor an IPv4-mapped form of one.
bool IsPublicAddress(const std::string& ip);

}  // namespace glm4v::openai
