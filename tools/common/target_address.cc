#include "tools/common/target_address.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace glm4v::tools {

bool IsLoopbackTarget(absl::string_view target) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(target));
  absl::string_view s = t;
  if (absl::StartsWith(s, "unix:") || absl::StartsWith(s, "unix-abstract:")) return true;
  for (absl::string_view prefix : {"dns:///", "ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&s, prefix)) break;
  }
  std::string host;
  if (absl::ConsumePrefix(&s, "[")) {
    const size_t close = s.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(s.substr(0, close));
  } else {
    // host:port; a bare IPv6 address has several colons and no port.
    const size_t colon = s.rfind(':');
    const bool several = s.find(':') != colon;
    host = std::string(colon == absl::string_view::npos || several ? s : s.substr(0, colon));
  }
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

}  // namespace glm4v::tools
