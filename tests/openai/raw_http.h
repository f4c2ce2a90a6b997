// A minimal HTTP/1.1 client on a plain socket, for what cpp-httplib's client cannot do in tests:
// read a chunked event stream incrementally and hang up in the middle of it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace glm4v::testing {

struct RawResponse {
  int status = 0;
  std::string headers;  // raw header block
  std::string body;     // de-chunked
};

class RawHttpConnection {
 public:
  static absl::StatusOr<RawHttpConnection> Connect(int port);
  RawHttpConnection(RawHttpConnection&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~RawHttpConnection() { Close(); }

  // Sends a POST with a JSON body and "Connection: close".
  absl::Status SendPost(const std::string& path, const std::string& json_body);
  // Reads until `needle` has appeared in the raw bytes received so far (or EOF/timeout).
  absl::StatusOr<std::string> ReadUntil(const std::string& needle, int timeout_ms);
  // Reads to EOF and parses the response.
  absl::StatusOr<RawResponse> ReadResponse(int timeout_ms);
  void Close();

 private:
  explicit RawHttpConnection(int fd) : fd_(fd) {}
  int fd_;
  std::string received_;
};

// Splits a text/event-stream body into the payloads of its "data: " lines.
std::vector<std::string> SseDataPayloads(const std::string& body);

}  // namespace glm4v::testing
