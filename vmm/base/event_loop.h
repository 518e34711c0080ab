// EventLoop: epoll over fds, each with a callback; runs on the VMM thread. Callbacks may add
// and remove sources (including their own) while the loop runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  static Result<EventLoop> Create();

  // Watches fd (not owned) for `events` (EPOLLIN, ...).
  Status Add(int fd, uint32_t events, Callback callback);
  Status Remove(int fd);
  // Changes the events an added fd is watched for.
  Status Modify(int fd, uint32_t events);
  bool Watching(int fd) const { return callbacks_.count(fd) != 0; }
  // Waits up to timeout_ms (-1: forever) and dispatches what is ready. Returns how many events
  // were dispatched.
  Result<int> RunOnce(int timeout_ms);
  // Runs until Stop() is called (from a callback).
  Status Run();
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 private:
  UniqueFd epoll_;
  // shared_ptr so a callback that removes itself stays alive until it returns.
  std::map<int, std::shared_ptr<Callback>> callbacks_;
  bool stopped_ = false;
};

// An eventfd, the VMM's doorbell between threads.
class EventFd {
 public:
  static Result<EventFd> Create(int flags = 0);
  Status Signal(uint64_t value = 1) const;
  // Reads and clears the counter; 0 when nothing was pending (non-blocking fds).
  uint64_t Consume() const;
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

}  // namespace ember
