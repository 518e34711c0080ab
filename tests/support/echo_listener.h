// A host Unix-socket listener that echoes what each connection sends, one connection at a time,
// on its own thread: the host side of a guest's vsock connection to host port P (which arrives at
// <uds_path>_P). Polls with a 50 ms timeout so that destruction never waits on a silent peer.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

namespace ember::testing {

class UnixEchoListener {
 public:
  // With `owner`, the socket file is chowned to it (a jailed ember connects as that uid).
  explicit UnixEchoListener(const std::string& path,
                            std::optional<std::pair<uid_t, gid_t>> owner = std::nullopt);
  ~UnixEchoListener();
  UnixEchoListener(const UnixEchoListener&) = delete;
  UnixEchoListener& operator=(const UnixEchoListener&) = delete;

  bool ok() const { return ok_; }
  uint64_t echoed() const { return echoed_; }

 private:
  void Serve();

  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> echoed_{0};
  std::thread thread_;
};

}  // namespace ember::testing
