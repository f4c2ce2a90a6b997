#include "tests/openai/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace glm4v::testing {

absl::StatusOr<RawHttpConnection> RawHttpConnection::Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port, ": ", strerror(errno)));
  }
  return RawHttpConnection(fd);
}

absl::Status RawHttpConnection::SendPost(const std::string& path, const std::string& body) {
  const std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                       "Content-Type: application/json\r\nContent-Length: ",
                                       body.size(), "\r\nConnection: close\r\n\r\n", body);
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return absl::UnavailableError("send failed");
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RawHttpConnection::ReadUntil(const std::string& needle,
                                                         int timeout_ms) {
  char buf[4096];
  while (received_.find(needle) == std::string::npos) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return absl::DeadlineExceededError("read timed out");
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return absl::UnavailableError("recv failed");
    if (n == 0) break;  // EOF
    received_.append(buf, static_cast<size_t>(n));
  }
  return received_;
}

absl::StatusOr<RawResponse> RawHttpConnection::ReadResponse(int timeout_ms) {
  // Read to EOF ("Connection: close"), with a sentinel that never appears.
  auto all = ReadUntil(std::string("\0\0never\0\0", 9), timeout_ms);
  if (!all.ok()) return all.status();
  RawResponse r;
  const size_t head_end = all->find("\r\n\r\n");
  if (head_end == std::string::npos) return absl::DataLossError("no header end");
  r.headers = all->substr(0, head_end);
  const size_t sp = r.headers.find(' ');
  if (sp == std::string::npos || !absl::SimpleAtoi(r.headers.substr(sp + 1, 3), &r.status)) {
    return absl::DataLossError("bad status line");
  }
  std::string rest = all->substr(head_end + 4);
  if (r.headers.find("Transfer-Encoding: chunked") == std::string::npos) {
    r.body = rest;
    return r;
  }
  size_t pos = 0;
  while (true) {
    const size_t eol = rest.find("\r\n", pos);
    if (eol == std::string::npos) return absl::DataLossError("truncated chunk header");
    size_t size = 0;
    if (!absl::SimpleHexAtoi(rest.substr(pos, eol - pos), &size)) {
      return absl::DataLossError("bad chunk size");
    }
    if (size == 0) break;
    if (eol + 2 + size > rest.size()) return absl::DataLossError("truncated chunk");
    r.body.append(rest, eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return r;
}

void RawHttpConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::vector<std::string> SseDataPayloads(const std::string& body) {
  std::vector<std::string> out;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&event, "data: ")) out.emplace_back(event);
  }
  return out;
}

}  // namespace glm4v::testing
