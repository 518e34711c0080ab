// Vcpu: one thread per vCPU running KVM_RUN and dispatching port-I/O and MMIO exits to the
// buses. A vCPU never decides the VM's fate itself: it reports a VmExit to the VMM thread, which
// stops every vCPU (immediate_exit + a signal) and joins them.
#pragma once

#include <atomic>
#include <functional>
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

class Vcpu {
 public:
  using ExitReporter = std::function<void(const VmExit&)>;

  Vcpu(VcpuFd fd, Bus* pio_bus, Bus* mmio_bus, ExitReporter report_exit);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  // Installs the (empty) handler of the kick signal; once per process, before any Start().
  static Status InstallKickSignalHandler();

  // `before_run` runs on the new thread before the first KVM_RUN (seccomp install goes there).
  void Start(std::function<void()> before_run = {});
  // Makes the thread leave KVM_RUN and return. Safe to call from any thread, more than once.
  void Stop();
  void Join();

  VcpuFd& fd() { return fd_; }
  uint32_t index() const { return fd_.id(); }
  // Exits the VMM could not map to a device (counted, never fatal).
  uint64_t unhandled_exits() const { return unhandled_exits_.load(); }

 private:
  void ThreadMain(std::function<void()> before_run);
  // Returns false when the vCPU must stop.
  bool HandleExit();
  void ReportError(const std::string& what);

  VcpuFd fd_;
  Bus* pio_bus_;
  Bus* mmio_bus_;
  ExitReporter report_exit_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> unhandled_exits_{0};
};

}  // namespace ember
