#include "vmm/vcpu.h"

#include <pthread.h>
#include <signal.h>

#include <cstring>

#include "vmm/base/log.h"
#include "vmm/seccomp/seccomp.h"

namespace ember {
namespace {

// Firecracker kicks vCPUs with SIGRTMIN + 0; its handler does nothing, the point is that the
// signal interrupts KVM_RUN (EINTR) on that thread.
int KickSignal() { return SIGRTMIN; }

void KickHandler(int) {}

std::string DescribeRegs(const VcpuFd& fd) {
  auto regs = fd.GetRegs();
  auto sregs = fd.GetSregs();
  if (!regs.ok() || !sregs.ok()) return "(registers unavailable)";
  const kvm_regs& r = *regs;
  const kvm_sregs& s = *sregs;
  return StrFormat(
      "rip=0x%llx rsp=0x%llx rflags=0x%llx rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx "
      "rsi=0x%llx rdi=0x%llx cr0=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx cs=0x%x",
      r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, s.cr0, s.cr3, s.cr4,
      s.efer, s.cs.selector);
}

}  // namespace

Vcpu::Vcpu(VcpuFd fd, Bus* pio_bus, Bus* mmio_bus, ExitReporter report_exit)
    : fd_(std::move(fd)), pio_bus_(pio_bus), mmio_bus_(mmio_bus),
      report_exit_(std::move(report_exit)) {}

Vcpu::~Vcpu() {
  Stop();
  Join();
}

Status Vcpu::InstallKickSignalHandler() {
  struct sigaction sa = {};
  sa.sa_handler = KickHandler;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: KVM_RUN must come back with EINTR.
  if (sigaction(KickSignal(), &sa, nullptr) != 0) return Error::Errno("sigaction(SIGRTMIN)");
  return Ok();
}

void Vcpu::Start(std::function<void()> before_run) {
  running_ = true;
  thread_ = std::thread([this, before_run = std::move(before_run)]() mutable {
    ThreadMain(std::move(before_run));
  });
}

void Vcpu::Kick() {
  // immediate_exit covers the race where the signal lands just before the thread enters KVM_RUN.
  std::atomic_ref<uint8_t>(fd_.run()->immediate_exit).store(1);
  if (thread_.joinable() && running_) pthread_kill(thread_.native_handle(), KickSignal());
}

void Vcpu::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();  // a parked thread wakes and ends
  Kick();
}

void Vcpu::Join() {
  if (thread_.joinable()) thread_.join();
}

Status Vcpu::Pause() {
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_ || ended_) return Error{StrFormat("vCPU %u has stopped", index())};
  if (parked_) return Ok();
  pause_requested_ = true;
  if (!thread_.joinable()) return Ok();  // not started: it parks before its first KVM_RUN
  lock.unlock();
  Kick();
  lock.lock();
  cv_.wait_for(lock, kPauseTimeout, [this] { return parked_ || ended_ || stop_; });
  if (parked_) return Ok();
  // Withdrawn under the lock: the thread, not parked now, will not park later.
  pause_requested_ = false;
  if (stop_ || ended_) return Error{StrFormat("vCPU %u stopped while pausing", index())};
  return Error{StrFormat("vCPU %u did not leave KVM_RUN within %lld ms", index(),
                         static_cast<long long>(kPauseTimeout.count()))};
}

Status Vcpu::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pause_requested_ = false;
  }
  cv_.notify_all();
  return Ok();
}

bool Vcpu::paused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return parked_;
}

VcpuCounters Vcpu::counters() const {
  VcpuCounters c;
  c.exit_io_in = exit_io_in_.load(std::memory_order_relaxed);
  c.exit_io_out = exit_io_out_.load(std::memory_order_relaxed);
  c.exit_mmio_read = exit_mmio_read_.load(std::memory_order_relaxed);
  c.exit_mmio_write = exit_mmio_write_.load(std::memory_order_relaxed);
  c.failures = failures_.load(std::memory_order_relaxed);
  return c;
}

bool Vcpu::ParkIfPaused() {
  std::unique_lock<std::mutex> lock(mu_);
  if (pause_requested_ && !stop_) {
    parked_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !pause_requested_ || stop_; });
    parked_ = false;
  }
  return !stop_;
}

void Vcpu::ThreadMain(std::function<void()> before_run) {
  std::string name = StrFormat("vcpu %u", index());
  SetThreadLogName(name.c_str());
  std::string thread_name = StrFormat("ember_vcpu %u", index());
  pthread_setname_np(pthread_self(), thread_name.c_str());
  if (before_run) before_run();
  // Seccomp: the vcpu filter goes on before the first KVM_RUN (firecracker-facts §6).
  bool confined = true;
  if (Status s = ApplySeccompFilter(SeccompRole::kVcpu, thread_name.c_str()); !s.ok()) {
    ReportError(s.error().message);
    confined = false;
  }
  // False between an exit and the next KVM_RUN: KVM finishes a PIO/MMIO read on re-entry (the
  // data handed back in kvm_run goes into the guest's register then), so the thread may park
  // only when KVM_RUN came back with EINTR, or before the first KVM_RUN.
  bool settled = true;
  while (confined && (settled ? ParkIfPaused() : !stop_)) {
    Status s = fd_.Run();
    if (!s.ok()) {
      if (s.error().err == EINTR || s.error().err == EAGAIN) {
        // Cleared before the stop and pause flags are looked at again, so a kick that comes
        // after this point is never lost.
        std::atomic_ref<uint8_t>(fd_.run()->immediate_exit).store(0);
        settled = true;
        continue;
      }
      ReportError(s.error().message);
      break;
    }
    settled = false;
    if (!HandleExit()) break;
  }
  running_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
  }
  cv_.notify_all();
}

void Vcpu::ReportError(const std::string& what) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  // Logged once, by the VMM thread, when it ends the VM with this reason.
  std::string msg = StrFormat("vCPU %u: %s; %s", index(), what.c_str(), DescribeRegs(fd_).c_str());
  report_exit_(VmExit{VmExitKind::kError, msg});
}

bool Vcpu::HandleExit() {
  kvm_run* run = fd_.run();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      (run->io.direction == KVM_EXIT_IO_OUT ? exit_io_out_ : exit_io_in_)
          .fetch_add(1, std::memory_order_relaxed);
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      for (uint32_t i = 0; i < run->io.count; i++) {
        uint8_t* item = data + static_cast<size_t>(i) * run->io.size;
        bool handled = run->io.direction == KVM_EXIT_IO_OUT
                           ? pio_bus_->Write(run->io.port, item, run->io.size)
                           : pio_bus_->Read(run->io.port, item, run->io.size);
        if (!handled) unhandled_exits_++;
      }
      return true;
    }
    case KVM_EXIT_MMIO: {
      (run->mmio.is_write ? exit_mmio_write_ : exit_mmio_read_)
          .fetch_add(1, std::memory_order_relaxed);
      bool handled = run->mmio.is_write
                         ? mmio_bus_->Write(run->mmio.phys_addr, run->mmio.data, run->mmio.len)
                         : mmio_bus_->Read(run->mmio.phys_addr, run->mmio.data, run->mmio.len);
      if (!handled) unhandled_exits_++;
      return true;
    }
    case KVM_EXIT_HLT:
      // With the in-kernel LAPIC, HLT is handled by KVM; seeing it means the vCPU stopped for
      // good (e.g. halted with interrupts off under a userspace irqchip).
      LOG_DEBUG("vCPU %u halted", index());
      return false;
    case KVM_EXIT_SHUTDOWN:
      ReportError("triple fault (KVM_EXIT_SHUTDOWN)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT: {
      uint32_t type = run->system_event.type;
      if (type == KVM_SYSTEM_EVENT_RESET || type == KVM_SYSTEM_EVENT_SHUTDOWN) {
        report_exit_(VmExit{type == KVM_SYSTEM_EVENT_RESET ? VmExitKind::kReset
                                                           : VmExitKind::kShutdown,
                            StrFormat("vCPU %u: KVM system event %u", index(), type)});
        return false;
      }
      ReportError(StrFormat("unexpected KVM system event %u", type));
      return false;
    }
    case KVM_EXIT_FAIL_ENTRY:
      ReportError(StrFormat("KVM_EXIT_FAIL_ENTRY (hardware reason 0x%llx)",
                            static_cast<unsigned long long>(
                                run->fail_entry.hardware_entry_failure_reason)));
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      ReportError(StrFormat("KVM_EXIT_INTERNAL_ERROR (suberror %u)", run->internal.suberror));
      return false;
    case KVM_EXIT_INTR:
      return true;
    default:
      ReportError(StrFormat("unexpected KVM exit reason %u", run->exit_reason));
      return false;
  }
}

}  // namespace ember
