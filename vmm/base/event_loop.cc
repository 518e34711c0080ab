#include "vmm/base/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

namespace ember {

Result<EventLoop> EventLoop::Create() {
  EventLoop loop;
  loop.epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!loop.epoll_.valid()) return Error::Errno("epoll_create1");
  return loop;
}

Status EventLoop::Add(int fd, uint32_t events, Callback callback) {
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return Error::Errno(StrFormat("epoll_ctl(ADD, fd %d)", fd));
  callbacks_[fd] = std::make_shared<Callback>(std::move(callback));
  return Ok();
}

Status EventLoop::Remove(int fd) {
  callbacks_.erase(fd);
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0)
    return Error::Errno(StrFormat("epoll_ctl(DEL, fd %d)", fd));
  return Ok();
}

Status EventLoop::Modify(int fd, uint32_t events) {
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
    return Error::Errno(StrFormat("epoll_ctl(MOD, fd %d)", fd));
  return Ok();
}

Result<int> EventLoop::RunOnce(int timeout_ms) {
  struct epoll_event events[32];
  int n = epoll_wait(epoll_.get(), events, 32, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return Error::Errno("epoll_wait");
  }
  for (int i = 0; i < n && !stopped_; i++) {
    auto it = callbacks_.find(events[i].data.fd);
    if (it == callbacks_.end()) continue;  // removed by an earlier callback in this batch
    std::shared_ptr<Callback> cb = it->second;
    (*cb)(events[i].events);
  }
  return n;
}

Status EventLoop::Run() {
  while (!stopped_) TRY(RunOnce(-1));
  return Ok();
}

Result<EventFd> EventFd::Create(int flags) {
  EventFd e;
  e.fd_.reset(eventfd(0, EFD_CLOEXEC | flags));
  if (!e.fd_.valid()) return Error::Errno("eventfd");
  return e;
}

Status EventFd::Signal(uint64_t value) const {
  if (write(fd_.get(), &value, sizeof(value)) != sizeof(value)) return Error::Errno("eventfd write");
  return Ok();
}

uint64_t EventFd::Consume() const {
  uint64_t v = 0;
  if (read(fd_.get(), &v, sizeof(v)) != sizeof(v)) return 0;
  return v;
}

}  // namespace ember
