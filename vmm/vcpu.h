// Vcpu: one thread per vCPU running KVM_RUN and dispatching port-I/O and MMIO exits to the
// buses. A vCPU never decides the VM's fate itself: it reports a VmExit to the VMM thread, which
// stops every vCPU (immediate_exit + a signal) and joins them.
//
// Pause and Resume (PATCH /vm) use the same kick. The thread parks only where KVM_RUN came back
// with EINTR: the kernel completes an interrupted PIO/MMIO exit on the next KVM_RUN before it
// looks at immediate_exit (KVM API, "immediate_exit"), so at that point no exit is half done
// and the vCPU's state in KVM is the guest's whole state (what a snapshot saves).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "devices/bus.h"
#include "vmm/kvm/kvm.h"

namespace ember {

enum class VmExitKind {
  kReset,     // i8042 reset or KVM system event: the guest asked to end; exit code 0
  kShutdown,  // KVM_SYSTEM_EVENT_SHUTDOWN; exit code 0
  kError,     // triple fault, KVM internal error, failed entry, failed KVM_RUN; exit code 1
};

struct VmExit {
  VmExitKind kind;
  std::string reason;
};

// Exits by kind, cumulative (Firecracker's vcpu metrics of the same names).
struct VcpuCounters {
  uint64_t exit_io_in = 0, exit_io_out = 0, exit_mmio_read = 0, exit_mmio_write = 0, failures = 0;
};

class Vcpu {
 public:
  // How long Pause() waits for the thread to park.
  static constexpr std::chrono::milliseconds kPauseTimeout{1000};

  using ExitReporter = std::function<void(const VmExit&)>;

  Vcpu(VcpuFd fd, Bus* pio_bus, Bus* mmio_bus, ExitReporter report_exit);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  // Installs the (empty) handler of the kick signal; once per process, before any Start().
  static Status InstallKickSignalHandler();

  // `before_run` runs on the new thread before the first KVM_RUN; the vcpu seccomp filter is
  // installed after it (vmm/seccomp/seccomp.h).
  void Start(std::function<void()> before_run = {});
  // Makes the thread leave KVM_RUN and return, paused or not. Safe to call from any thread,
  // more than once.
  void Stop();
  void Join();

  // From the VMM thread. Pause returns once the thread is parked outside KVM_RUN; if it is not
  // parked within kPauseTimeout, or the thread has ended, the request is withdrawn and Pause
  // fails, leaving the vCPU running (or ended). Before Start() it only records the request: the
  // thread then parks before its first KVM_RUN. Resume lets a parked thread re-enter KVM_RUN
  // (the guest continues where it stopped); it is a no-op on a vCPU that is not paused.
  Status Pause();
  Status Resume();
  bool paused() const;

  VcpuFd& fd() { return fd_; }
  uint32_t index() const { return fd_.id(); }
  // Exits the VMM could not map to a device (counted, never fatal).
  uint64_t unhandled_exits() const { return unhandled_exits_.load(); }
  VcpuCounters counters() const;

 private:
  void ThreadMain(std::function<void()> before_run);
  // Returns false when the vCPU must stop.
  bool HandleExit();
  void ReportError(const std::string& what);
  // On the vCPU thread, with no exit pending in KVM: parks while a pause is requested. Returns
  // false when the thread must end.
  bool ParkIfPaused();
  void Kick();

  VcpuFd fd_;
  Bus* pio_bus_;
  Bus* mmio_bus_;
  ExitReporter report_exit_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> unhandled_exits_{0};
  std::atomic<uint64_t> exit_io_in_{0};
  std::atomic<uint64_t> exit_io_out_{0};
  std::atomic<uint64_t> exit_mmio_read_{0};
  std::atomic<uint64_t> exit_mmio_write_{0};
  std::atomic<uint64_t> failures_{0};

  // Pause handshake. stop_ is also written under mu_ so that a parked thread cannot miss it.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool pause_requested_ = false;  // by the VMM thread
  bool parked_ = false;           // the vCPU thread waits in ParkIfPaused
  bool ended_ = false;            // the vCPU thread left its loop
};

}  // namespace ember
