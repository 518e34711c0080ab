#include "tests/support/api_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <thread>

namespace ember::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Parses a complete reply out of `buf`, if one is there.
std::optional<ApiReply> ParseReply(const std::string& buf, bool eof) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  ApiReply reply;
  std::string head = buf.substr(0, end);
  if (head.compare(0, 5, "HTTP/") != 0) return std::nullopt;
  size_t sp = head.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  reply.status = atoi(head.c_str() + sp + 1);
  size_t line_end = head.find("\r\n");
  reply.headers = line_end == std::string::npos ? "" : Lower(head.substr(line_end + 2));
  size_t length = 0;
  bool has_length = false;
  size_t cl = reply.headers.find("content-length:");
  if (cl != std::string::npos) {
    length = strtoul(reply.headers.c_str() + cl + 15, nullptr, 10);
    has_length = true;
  }
  std::string rest = buf.substr(end + 4);
  if (has_length) {
    if (rest.size() < length) return std::nullopt;
    reply.body = rest.substr(0, length);
  } else {
    if (!eof && reply.status != 204 && reply.status != 304) return std::nullopt;
    reply.body = rest;
  }
  return reply;
}

}  // namespace

bool ApiReply::HasHeader(const std::string& name) const {
  return headers.find(name + ":") != std::string::npos;
}

std::string FormatRequest(const std::string& method, const std::string& path,
                          const std::string& body) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n"
                    "User-Agent: curl/7.88.1\r\nAccept: application/json\r\n";
  if (!body.empty() || method == "PUT" || method == "PATCH") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  return req;
}

int ApiClient::Connect() const {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::optional<ApiReply> ApiClient::ReadReply(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string buf;
  char chunk[65536];
  for (;;) {
    if (auto reply = ParseReply(buf, false)) return reply;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ParseReply(buf, true);
    buf.append(chunk, static_cast<size_t>(n));
  }
}

std::optional<ApiReply> ApiClient::Request(const std::string& method, const std::string& path,
                                           const std::string& body,
                                           std::chrono::milliseconds timeout) {
  return Raw(FormatRequest(method, path, body), timeout);
}

std::optional<ApiReply> ApiClient::Raw(const std::string& bytes,
                                       std::chrono::milliseconds timeout) {
  int fd = Connect();
  if (fd < 0) return std::nullopt;
  std::optional<ApiReply> reply;
  // A server may answer (and close) before reading everything, e.g. a body over the limit.
  (void)WriteAll(fd, bytes);
  reply = ReadReply(fd, timeout);
  close(fd);
  return reply;
}

bool ApiClient::WaitUntilAccepting(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int fd = Connect();
    if (fd >= 0) {
      close(fd);
      return true;
    }
    // Polling a path that does not exist yet has no fd to wait on; a short back-off bounds the
    // cost while the deadline bounds the wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace ember::testing
