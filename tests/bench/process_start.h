// Observing a process's start, for benchmarks: the moment of its exec, its CPU time and page
// faults at the entry of its listen(), the moment its socket accepts, and its exit, each waited
// for on an event (inotify, pidfd, seccomp notification), never on a timer.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace ember::testing {

inline uint64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t MonoNs() { return ClockNs(CLOCK_MONOTONIC); }

// A child started with vfork+exec, as launchers start a monitor (posix_spawn, Go's os/exec), so
// that exec has no copy of the parent's address space to tear down; its stdio is /dev/null. The
// child stamps CLOCK_MONOTONIC and its own CPU time just before execv, so neither the spawn nor
// the parent's scheduling is counted.
struct Spawned {
  pid_t pid = -1;
  uint64_t exec_ns = 0;          // CLOCK_MONOTONIC just before execv
  uint64_t pre_exec_cpu_ns = 0;  // the child's CPU time at that moment (counted out)
  int listen_notify_fd = -1;     // seccomp notifications of the child's listen(), or -1
};

// With `stop_at_listen`, the child also installs a seccomp filter before exec that hands its
// listen() calls to this process (SECCOMP_RET_USER_NOTIF): StopAtListen() then reads its CPU
// time while it waits at the entry of its first listen(). listen_notify_fd stays -1 where the
// kernel refuses the filter.
Spawned Spawn(const std::vector<std::string>& argv, bool stop_at_listen = false);

void KillAndReap(pid_t pid);

// CPU time of the child's threads since its exec, in ms (/proc/PID/task/*/schedstat).
double ChildCpuMs(const Spawned& s);

// Minor page faults of every thread of `pid` so far (/proc/PID/stat field 10).
double MinorFaults(pid_t pid);

struct AtListen {
  double cpu_ms = 0;
  double faults = 0;
};
// Waits for the child's first listen() (Spawn with stop_at_listen), reads its CPU time and faults
// while it is held there, lets the call proceed and closes the notification fd (a later listen()
// of the child then fails). nullopt: no listen() within the timeout, or no notification fd.
std::optional<AtListen> StopAtListen(Spawned& child, std::chrono::milliseconds timeout);

// Watches a directory for new entries, so that a wait for a socket path wakes when the server
// binds it, and the server's pidfd, so that the wait ends when the server dies first. Between
// bind() and listen() connect() is refused; that window is a syscall long, and is spun through.
// Construct it before starting the server.
class SocketWatch {
 public:
  explicit SocketWatch(const std::string& dir);
  ~SocketWatch();
  SocketWatch(const SocketWatch&) = delete;
  SocketWatch& operator=(const SocketWatch&) = delete;

  // A connected fd (the caller closes it), or -1 when `pid` exited or the timeout passed.
  int WaitAccepting(const std::string& path, pid_t pid, std::chrono::milliseconds timeout);

 private:
  int fd_;
};

// Waits for a Subprocess to exit, woken by its pidfd (Subprocess::WaitExit polls once its pipes
// are closed, which would add milliseconds to every teardown in a rate run).
std::optional<int> WaitExitPrompt(Subprocess& p, std::chrono::milliseconds timeout);

}  // namespace ember::testing
