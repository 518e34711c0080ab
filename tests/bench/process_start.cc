#include "tests/bench/process_start.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tests/bench/bench_util.h"

namespace ember::testing {
namespace {

using std::chrono::milliseconds;

// Installs, in the calling process, a filter that turns listen() into a notification for the
// holder of the returned fd; -1 when the kernel refuses it.
int NotifyOnListen() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_listen, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return static_cast<int>(
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
}

// One fd over a Unix datagram socket (SCM_RIGHTS): vfork's child has its own fd table.
void SendFd(int channel, int fd) {
  char data = 0;
  iovec iov = {&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  sendmsg(channel, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int ReceiveFd(int channel) {
  char data;
  iovec iov = {&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

int TryConnect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  const int err = errno;
  close(fd);
  errno = err;
  return -1;
}

int PidFd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

Spawned Spawn(const std::vector<std::string>& argv, bool stop_at_listen) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  int channel[2] = {-1, -1};
  if (stop_at_listen && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, channel) != 0)
    channel[0] = channel[1] = -1;
  // vfork's child shares this memory until execv: it writes the stamps straight into these.
  volatile uint64_t exec_ns = 0, cpu_ns = 0;
  const pid_t pid = vfork();
  if (pid == 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (channel[1] >= 0) {
      const int notify = NotifyOnListen();
      if (notify >= 0) SendFd(channel[1], notify);
    }
    cpu_ns = ClockNs(CLOCK_THREAD_CPUTIME_ID);
    exec_ns = ClockNs(CLOCK_MONOTONIC);
    execv(args[0], args.data());
    _exit(127);
  }
  Spawned s;
  close(null);
  if (channel[0] >= 0) {
    // The child has exec'd (vfork returns then): its message, if any, is queued.
    if (pid > 0) s.listen_notify_fd = ReceiveFd(channel[0]);
    close(channel[0]);
    close(channel[1]);
  }
  if (pid < 0) return s;
  s.pid = pid;
  s.exec_ns = exec_ns;
  s.pre_exec_cpu_ns = cpu_ns;
  return s;
}

void KillAndReap(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

double ChildCpuMs(const Spawned& s) {
  return (ProcessCpuSeconds(s.pid) * 1e9 - static_cast<double>(s.pre_exec_cpu_ns)) / 1e6;
}

double MinorFaults(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t after_comm = stat.rfind(')');
  if (after_comm == std::string::npos) return 0;
  // After "(comm)": state ppid pgrp session tty_nr tpgid flags minflt (proc(5)).
  unsigned long long minflt = 0;
  if (sscanf(stat.c_str() + after_comm + 1, " %*c %*d %*d %*d %*d %*d %*u %llu", &minflt) != 1)
    return 0;
  return static_cast<double>(minflt);
}

std::optional<AtListen> StopAtListen(Spawned& child, milliseconds timeout) {
  if (child.listen_notify_fd < 0) return std::nullopt;
  std::optional<AtListen> result;
  pollfd p = {child.listen_notify_fd, POLLIN, 0};
  // The notification fd reports POLLHUP instead when the child exits without calling listen().
  if (poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN)) {
    seccomp_notif req = {};
    if (ioctl(child.listen_notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
      result = AtListen{ChildCpuMs(child), MinorFaults(child.pid)};
      seccomp_notif_resp resp = {};
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl(child.listen_notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
  }
  close(child.listen_notify_fd);
  child.listen_notify_fd = -1;
  return result;
}

SocketWatch::SocketWatch(const std::string& dir) : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
  inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO);
}

SocketWatch::~SocketWatch() { close(fd_); }

int SocketWatch::WaitAccepting(const std::string& path, pid_t pid, milliseconds timeout) {
  const uint64_t deadline = MonoNs() + static_cast<uint64_t>(timeout.count()) * 1000000;
  const int pidfd = PidFd(pid);
  int result = -1;
  for (;;) {
    result = TryConnect(path);
    if (result >= 0) break;
    const int err = errno;
    const uint64_t now = MonoNs();
    if (now >= deadline) break;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {pidfd, POLLIN, 0}};
    // Refused: bound, not yet listening (only check the server is alive); anything else: the
    // path is not there yet, wait for it to appear.
    const int wait_ms = err == ECONNREFUSED ? 0 : static_cast<int>((deadline - now) / 1000000 + 1);
    if (poll(fds, pidfd >= 0 ? 2 : 1, wait_ms) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) break;  // the server is gone
    char events[4096];
    while (read(fd_, events, sizeof(events)) > 0) {
    }
    if (err == ECONNREFUSED) sched_yield();
  }
  if (pidfd >= 0) close(pidfd);
  return result;
}

std::optional<int> WaitExitPrompt(Subprocess& p, milliseconds timeout) {
  const int pidfd = PidFd(p.pid());
  if (pidfd >= 0) {
    pollfd fd = {pidfd, POLLIN, 0};
    poll(&fd, 1, static_cast<int>(timeout.count()));
    close(pidfd);
  }
  return p.WaitExit(timeout);
}

}  // namespace ember::testing
