#include "services/gateway/openai/image_fetcher.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace glm4v::openai {
namespace {

struct ParsedUrl {
  std::string scheme;  // http / https
  std::string host;    // without brackets
  int port = 0;
  std::string path;  // with the query
};

// scheme://host:port, IPv6 hosts in brackets.
std::string Origin(const ParsedUrl& url) {
  const bool ipv6 = url.host.find(':') != std::string::npos;
  return absl::StrCat(url.scheme, "://", ipv6 ? "[" : "", url.host, ipv6 ? "]" : "", ":",
                      url.port);
}

absl::StatusOr<ParsedUrl> ParseUrl(const std::string& url) {
  ParsedUrl out;
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "http://")) {
    out.scheme = "http";
    out.port = 80;
    rest.remove_prefix(7);
  } else if (absl::StartsWithIgnoreCase(rest, "https://")) {
    out.scheme = "https";
    out.port = 443;
    rest.remove_prefix(8);
  } else {
    return absl::InvalidArgumentError("image URL must be http(s) or a data URL");
  }
  const size_t slash = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, slash);
  out.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (const size_t hash = out.path.find('#'); hash != std::string::npos) out.path.resize(hash);
  if (out.path.empty() || out.path[0] == '?') out.path = "/" + out.path;
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("image URL must not carry credentials");
  }
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("malformed IPv6 host");
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority[0] != ':') {
      return absl::InvalidArgumentError("malformed image URL host");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    authority.remove_prefix(colon == absl::string_view::npos ? authority.size() : colon);
  }
  if (!authority.empty()) {  // ":port"
    if (!absl::SimpleAtoi(authority.substr(1), &out.port) || out.port <= 0 || out.port > 65535) {
      return absl::InvalidArgumentError("malformed image URL port");
    }
  }
  if (out.host.empty()) return absl::InvalidArgumentError("image URL has no host");
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("image URL path must be percent-encoded");
    }
  }
  return out;
}

bool PublicV4(const uint8_t a[4]) {
  const uint32_t ip = (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
  struct Range {
    uint32_t base;
    int bits;
  };
  static constexpr Range kBlocked[] = {
      {0x00000000, 8},   // "this network"
      {0x0a000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10 shared (carrier NAT)
      {0x7f000000, 8},   // loopback
      {0xa9fe0000, 16},  // link-local (cloud metadata at 169.254.169.254)
      {0xac100000, 12},  // 172.16/12
      {0xc0000000, 24},  // 192.0.0/24 protocol assignments
      {0xc0000200, 24},  // TEST-NET-1
      {0xc0a80000, 16},  // 192.168/16
      {0xc6120000, 15},  // 198.18/15 benchmarking
      {0xc6336400, 24},  // TEST-NET-2
      {0xcb007100, 24},  // TEST-NET-3
      {0xe0000000, 4},   // multicast
      {0xf0000000, 4},   // reserved + broadcast
  };
  for (const Range& r : kBlocked) {
    if ((ip >> (32 - r.bits)) == (r.base >> (32 - r.bits))) return false;
  }
  return true;
}

bool PublicV6(const uint8_t a[16]) {
  static constexpr uint8_t kZero[16] = {};
  if (std::memcmp(a, kZero, 15) == 0 && (a[15] == 0 || a[15] == 1)) return false;  // :: and ::1
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms: judge the IPv4 address.
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a, kMapped, 12) == 0 || std::memcmp(a, kZero, 12) == 0) return PublicV4(a + 12);
  if ((a[0] & 0xfe) == 0xfc) return false;                    // fc00::/7 unique local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return false;    // fe80::/10 link-local
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return false;    // fec0::/10 site-local
  if (a[0] == 0xff) return false;                             // multicast
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return false;  // docs
  if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b) {              // NAT64
    return PublicV4(a + 12);
  }
  // Tunnels that reach an IPv4 address where these prefixes are routed: 6to4 (2002::/16, the
  // address in bytes 2-5) and Teredo (2001:0::/32, server in bytes 4-7, client bits-inverted in
  // 12-15): both must be public.
  if (a[0] == 0x20 && a[1] == 0x02) return PublicV4(a + 2);
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x00) {
    const uint8_t client[4] = {static_cast<uint8_t>(~a[12]), static_cast<uint8_t>(~a[13]),
                               static_cast<uint8_t>(~a[14]), static_cast<uint8_t>(~a[15])};
    return PublicV4(a + 4) && PublicV4(client);
  }
  return true;
}

// The host's addresses (numeric), or an error naming the host.
absl::StatusOr<std::vector<std::string>> Resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("image URL host '", host, "' does not resolve: ", gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf, sizeof(buf));
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf,
                sizeof(buf));
    } else {
      continue;
    }
    out.push_back(buf);
  }
  freeaddrinfo(result);
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("image URL host '", host, "' has no address"));
  }
  return out;
}

// Resolve() within `deadline`: glibc's resolver can block for its own timeouts (seconds per
// nameserver and retry) on every hop, outside the fetch's clock otherwise. A lookup that
// outlives the deadline finishes on its own thread and is dropped.
absl::StatusOr<std::vector<std::string>> ResolveBefore(const std::string& host,
                                                       absl::Time deadline) {
  struct Lookup {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    absl::StatusOr<std::vector<std::string>> result ABSL_GUARDED_BY(mu);
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host] {
    absl::StatusOr<std::vector<std::string>> result = Resolve(host);
    absl::MutexLock lock(&lookup->mu);
    lookup->result = std::move(result);
    lookup->done = true;
  }).detach();
  absl::MutexLock lock(&lookup->mu);
  if (!lookup->mu.AwaitWithDeadline(absl::Condition(&lookup->done), deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("image URL host '", host, "' did not resolve in time"));
  }
  return lookup->result;
}

// A redirect's Location against the URL that answered it: absolute, scheme-relative
// ("//host/x"), absolute-path ("/x"), a query ("?x") or relative to the current path's
// directory ("x"; dot segments are left for the server).
std::string ResolveLocation(const ParsedUrl& base, const std::string& location) {
  if (absl::StrContains(location.substr(0, location.find_first_of("/?#")), ":")) {
    return location;  // has a scheme (ParseUrl refuses any but http(s))
  }
  if (absl::StartsWith(location, "//")) return absl::StrCat(base.scheme, ":", location);
  if (absl::StartsWith(location, "/")) return Origin(base) + location;
  std::string path = base.path.substr(0, base.path.find('?'));
  if (absl::StartsWith(location, "?")) return Origin(base) + path + location;
  path.resize(path.rfind('/') + 1);  // the directory; the path always starts with '/'
  return Origin(base) + path + location;
}

std::string SniffImageType(const std::string& bytes) {
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    return "image/png";
  }
  if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xff\xd8\xff", 3) == 0) {
    return "image/jpeg";
  }
  return "";
}

}  // namespace

bool IsPublicAddress(const std::string& ip) {
  uint8_t v4[4], v6[16];
  if (inet_pton(AF_INET, ip.c_str(), v4) == 1) return PublicV4(v4);
  if (inet_pton(AF_INET6, ip.c_str(), v6) == 1) return PublicV6(v6);
  return false;
}

absl::StatusOr<FetchedImage> ImageFetcher::Fetch(const std::string& original_url) const {
  const absl::Time deadline = absl::Now() + options_.timeout;
  std::string url = original_url;
  for (int hop = 0;; ++hop) {
    auto parsed = ParseUrl(url);
    if (!parsed.ok()) return parsed.status();
    auto addresses = ResolveBefore(parsed->host, deadline);
    if (!addresses.ok()) return addresses.status();
    if (!options_.allow_private_addresses) {
      for (const std::string& ip : *addresses) {
        if (!IsPublicAddress(ip)) {
          // Not which address: the caller must not learn the private network's layout.
          return absl::InvalidArgumentError(absl::StrCat(
              "image URL host '", parsed->host,
              "' is not a public address (private, loopback, link-local or reserved); the "
              "gateway fetches only public addresses (--allow_private_image_urls lifts this)"));
        }
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("image URL fetch took too long");
    }
    const auto left_us = std::chrono::microseconds(absl::ToInt64Microseconds(left));
    httplib::Client client(Origin(*parsed));
    // Connect to the address that was checked, whatever DNS says next.
    client.set_hostname_addr_map({{parsed->host, addresses->front()}});
    client.set_connection_timeout(left_us);
    // The watchdog below ends reads and writes at the deadline; these per-call timeouts only
    // back it up, a second later, so that the deadline has one owner (a per-read timeout ending
    // just before it, by its millisecond rounding, looked like a broken connection).
    client.set_read_timeout(left_us + std::chrono::seconds(1));
    client.set_write_timeout(left_us + std::chrono::seconds(1));
    client.set_follow_location(false);
    client.set_keep_alive(false);
    if (parsed->scheme == "https") {
      client.enable_server_certificate_verification(true);
      if (!options_.ca_file.empty()) client.set_ca_cert_path(options_.ca_file.c_str());
    }
    // The timeouts above bound each read, not the whole: a server trickling header bytes would
    // hold the fetch (and grow its headers) for ever. At the deadline the socket is shut.
    std::atomic<bool> cut_off{false};
    absl::Notification fetched;
    std::thread watchdog([&] {
      if (!fetched.WaitForNotificationWithDeadline(deadline)) {
        cut_off.store(true);
        client.stop();
      }
    });
    std::string body;
    bool too_large = false, too_slow = false;
    httplib::Headers headers = {{"Accept", "image/png, image/jpeg"},
                                {"User-Agent", "glm4v-gateway"}};
    auto result = client.Get(
        parsed->path.c_str(), headers,
        [&](const httplib::Response& response) {
          // Skip bodies of redirects and errors; reject a declared oversize before reading.
          if (response.status != 200) return true;
          if (response.has_header("Content-Length")) {
            int64_t declared = 0;
            if (absl::SimpleAtoi(response.get_header_value("Content-Length"), &declared) &&
                declared > options_.max_bytes) {
              too_large = true;
              return false;
            }
          }
          return true;
        },
        [&](const char* data, size_t length) {
          if (static_cast<int64_t>(body.size() + length) > options_.max_bytes) {
            too_large = true;
            return false;
          }
          if (absl::Now() > deadline) {
            too_slow = true;
            return false;
          }
          body.append(data, length);
          return true;
        });
    fetched.Notify();
    watchdog.join();
    if (too_large) {
      return absl::InvalidArgumentError(
          absl::StrCat("image at the URL is larger than ", options_.max_bytes, " bytes"));
    }
    if (too_slow || cut_off.load()) {
      return absl::DeadlineExceededError("image URL fetch took too long");
    }
    if (!result) {
      const httplib::Error error = result.error();
      if (error == httplib::Error::ConnectionTimeout) {  // the connect took all that was left
        return absl::DeadlineExceededError("image URL fetch took too long");
      }
      if (error == httplib::Error::SSLServerVerification) {
        return absl::InvalidArgumentError(
            absl::StrCat("image URL host '", parsed->host, "' has an untrusted certificate"));
      }
      return absl::UnavailableError(absl::StrCat("image URL host '", parsed->host,
                                                 "' could not be read: ",
                                                 httplib::to_string(error)));
    }
    const int status = result->status;
    if (status >= 300 && status < 400 && result->has_header("Location")) {
      if (hop >= options_.max_redirects) {
        return absl::InvalidArgumentError(
            absl::StrCat("image URL redirects more than ", options_.max_redirects, " times"));
      }
      url = ResolveLocation(*parsed, result->get_header_value("Location"));
      continue;
    }
    if (status != 200) {
      return absl::InvalidArgumentError(absl::StrCat("image URL answered HTTP ", status));
    }
    const std::string content_type =
        absl::AsciiStrToLower(result->get_header_value("Content-Type"));
    if (!content_type.empty() && !absl::StartsWith(content_type, "image/") &&
        !absl::StartsWith(content_type, "application/octet-stream")) {
      return absl::InvalidArgumentError(
          absl::StrCat("image URL content type is '", content_type, "', not an image"));
    }
    FetchedImage image;
    image.mime_type = SniffImageType(body);
    if (image.mime_type.empty()) {
      return absl::InvalidArgumentError("image at the URL is neither PNG nor JPEG");
    }
    image.bytes = std::move(body);
    return image;
  }
}

}  // namespace glm4v::openai
