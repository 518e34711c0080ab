// EventLoop: epoll over fds, each with a callback; runs on the VMM thread. Callbacks may add
// and remove sources (including their own) while the loop runs. Sources belong to a group;
// suspending a group takes its fds out of epoll (their callbacks and events are kept) until the
// group is resumed: that is how a paused microVM's devices stop processing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "vmm/base/result.h"
#include "vmm/base/unique_fd.h"

namespace ember {

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  static Result<EventLoop> Create();

  enum Group : int { kDefault = 0, kDevices = 1 };

  // Watches fd (not owned) for `events` (EPOLLIN, ...).
  Status Add(int fd, uint32_t events, Callback callback, Group group = kDefault);
  Status Remove(int fd);
  // Changes the events an added fd is watched for.
  Status Modify(int fd, uint32_t events);
  bool Watching(int fd) const { return sources_.count(fd) != 0; }
  // Takes the group's fds out of epoll / puts them back. Adding to a suspended group registers
  // the source for later.
  Status Suspend(Group group);
  Status Resume(Group group);
  // Waits up to timeout_ms (-1: forever) and dispatches what is ready. Returns how many events
  // were dispatched.
  Result<int> RunOnce(int timeout_ms);
  // Runs until Stop() is called (from a callback).
  Status Run();
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

 private:
  UniqueFd epoll_;
  struct Source {
    // shared_ptr so a callback that removes itself stays alive until it returns.
    std::shared_ptr<Callback> callback;
    uint32_t events = 0;
    Group group = kDefault;
  };
  Status Control(int op, int fd, uint32_t events);
  bool Suspended(Group group) const { return suspended_.count(group) != 0; }

  std::map<int, Source> sources_;
  std::set<Group> suspended_;
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
