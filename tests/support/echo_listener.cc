#include "tests/support/echo_listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ember::testing {
namespace {

bool WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

UnixEchoListener::UnixEchoListener(const std::string& path,
                                   std::optional<std::pair<uid_t, gid_t>> owner) {
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        listen(fd_, 4) == 0 && (!owner || chown(path.c_str(), owner->first, owner->second) == 0);
  thread_ = std::thread([this] { Serve(); });
}

UnixEchoListener::~UnixEchoListener() {
  stop_ = true;
  thread_.join();
  if (fd_ >= 0) close(fd_);
}

void UnixEchoListener::Serve() {
  while (!stop_) {
    pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    char buf[65536];
    while (!stop_) {
      pollfd q = {c, POLLIN, 0};
      if (poll(&q, 1, 50) <= 0) continue;
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0 || !WriteAll(c, buf, static_cast<size_t>(n))) break;
      echoed_ += static_cast<uint64_t>(n);
    }
    close(c);
  }
}

}  // namespace ember::testing
