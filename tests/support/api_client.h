// A minimal HTTP/1.1 client over a Unix socket for tests and benchmarks: requests in curl's wire
// format (what Firecracker's getting-started guide sends), and raw bytes for hostile input. It
// is deliberately not cpp-httplib, so the server is checked against an independent client.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace ember::testing {

struct ApiReply {
  int status = 0;
  std::string headers;  // the raw header block, lower-cased names
  std::string body;
  bool HasHeader(const std::string& name_lowercase) const;
};

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path) : path_(std::move(socket_path)) {}

  // One request on a fresh connection, as `curl --unix-socket` sends it; nullopt when the
  // connection failed or the reply was incomplete within the timeout.
  std::optional<ApiReply> Request(const std::string& method, const std::string& path,
                                  const std::string& body = "",
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::optional<ApiReply> Get(const std::string& path) { return Request("GET", path); }
  std::optional<ApiReply> Put(const std::string& path, const std::string& body) {
    return Request("PUT", path, body);
  }
  std::optional<ApiReply> Patch(const std::string& path, const std::string& body) {
    return Request("PATCH", path, body);
  }

  // Sends `bytes` as is, then reads until the server closes or a full reply arrived. nullopt:
  // no reply (closed without one, or timed out).
  std::optional<ApiReply> Raw(const std::string& bytes,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // A connected socket fd (caller closes), or -1.
  int Connect() const;
  // Reads one reply from fd.
  static std::optional<ApiReply> ReadReply(int fd, std::chrono::milliseconds timeout);

  // Waits until the socket accepts a connection.
  bool WaitUntilAccepting(std::chrono::milliseconds timeout) const;

 private:
  std::string path_;
};

std::string FormatRequest(const std::string& method, const std::string& path,
                          const std::string& body);

}  // namespace ember::testing
