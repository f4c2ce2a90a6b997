#include "services/gateway/worker_discovery.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace glm4v {
namespace {

constexpr absl::string_view kDns = "dns:///";
constexpr absl::string_view kFile = "file://";

// The port of "host:port" (1..65535), or 0 when `entry` is not of that form.
int PortOf(absl::string_view entry) {
  const size_t colon = entry.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(entry.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return 0;
  }
  return port;
}

absl::StatusOr<std::vector<std::string>> ResolveDns(absl::string_view target) {
  const int port = PortOf(target);
  if (port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker discovery dns:///", target, ": expected NAME:PORT"));
  }
  const std::string host(target.substr(0, target.rfind(':')));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("worker discovery: cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (addrinfo* a = result; a != nullptr; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, ip, sizeof(ip));
      out.push_back(absl::StrCat(ip, ":", port));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, ip,
                sizeof(ip));
      out.push_back(absl::StrCat("[", ip, "]:", port));
    }
  }
  freeaddrinfo(result);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadFileList(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("worker discovery: cannot read ", path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view entry = line;
    const size_t hash = entry.find('#');
    if (hash != absl::string_view::npos) entry = entry.substr(0, hash);
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    if (PortOf(entry) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker discovery file ", path, ": '", entry, "' is not host:port"));
    }
    out.emplace_back(entry);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

absl::Status ValidateDiscoverySpec(const std::string& spec) {
  if (absl::StartsWith(spec, kDns) && spec.size() > kDns.size()) return absl::OkStatus();
  if (absl::StartsWith(spec, kFile) && spec.size() > kFile.size() + 1 &&
      spec[kFile.size()] == '/') {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--worker_discovery=", spec, ": expected dns:///NAME:PORT or file:///PATH"));
}

absl::StatusOr<std::vector<std::string>> DiscoverWorkers(const std::string& spec) {
  if (absl::Status valid = ValidateDiscoverySpec(spec); !valid.ok()) return valid;
  if (absl::StartsWith(spec, kDns)) return ResolveDns(absl::string_view(spec).substr(kDns.size()));
  return ReadFileList(spec.substr(kFile.size()));
}

}  // namespace glm4v
