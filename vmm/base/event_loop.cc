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

Status EventLoop::Control(int op, int fd, uint32_t events) {
  struct epoll_event ev = {};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), op, fd, op == EPOLL_CTL_DEL ? nullptr : &ev) != 0) {
    const char* name = op == EPOLL_CTL_ADD ? "ADD" : op == EPOLL_CTL_MOD ? "MOD" : "DEL";
    return Error::Errno(StrFormat("epoll_ctl(%s, fd %d)", name, fd));
  }
  return Ok();
}

Status EventLoop::Add(int fd, uint32_t events, Callback callback, Group group) {
  if (!Suspended(group)) TRY_STATUS(Control(EPOLL_CTL_ADD, fd, events));
  sources_[fd] = Source{std::make_shared<Callback>(std::move(callback)), events, group};
  return Ok();
}

Status EventLoop::Remove(int fd) {
  auto it = sources_.find(fd);
  if (it == sources_.end()) return Error{StrFormat("fd %d is not watched", fd)};
  const bool in_epoll = !Suspended(it->second.group);
  sources_.erase(it);
  if (in_epoll) TRY_STATUS(Control(EPOLL_CTL_DEL, fd, 0));
  return Ok();
}

Status EventLoop::Modify(int fd, uint32_t events) {
  auto it = sources_.find(fd);
  if (it == sources_.end()) return Error{StrFormat("fd %d is not watched", fd)};
  it->second.events = events;
  if (Suspended(it->second.group)) return Ok();
  return Control(EPOLL_CTL_MOD, fd, events);
}

Status EventLoop::Suspend(Group group) {
  if (Suspended(group)) return Ok();
  for (const auto& [fd, source] : sources_)
    if (source.group == group) TRY_STATUS(Control(EPOLL_CTL_DEL, fd, 0));
  suspended_.insert(group);
  return Ok();
}

Status EventLoop::Resume(Group group) {
  if (!Suspended(group)) return Ok();
  suspended_.erase(group);
  for (const auto& [fd, source] : sources_)
    if (source.group == group) TRY_STATUS(Control(EPOLL_CTL_ADD, fd, source.events));
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
    auto it = sources_.find(events[i].data.fd);
    // Removed, or its group suspended, by an earlier callback in this batch.
    if (it == sources_.end() || Suspended(it->second.group)) continue;
    std::shared_ptr<Callback> cb = it->second.callback;
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
